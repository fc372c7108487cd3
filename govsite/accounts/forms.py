from django import forms

from govsite.accounts.models import OrgRole, SsoGroupMapping, Team, TeamRole, User


class TeamForm(forms.ModelForm):
    slack_webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Slack webhook URL",
        help_text="Budget alerts are posted here (an incoming-webhook URL).",
    )

    class Meta:
        model = Team
        fields = ["name", "slug", "description", "cost_centre", "slack_webhook_url"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"slug": "Short name used in URLs and as the team id in the gateway; letters, digits, -."}


class MembershipAddForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.order_by("email"), label="Person")
    role = forms.ChoiceField(choices=TeamRole.choices, initial=TeamRole.MEMBER)

    def clean_user(self):
        user = self.cleaned_data["user"]
        if not user.is_active:
            raise forms.ValidationError(f"{user.email} is deactivated; reactivate them before adding them to a team.")
        return user


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(choices=TeamRole.choices)


class PersonCreateForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=200, required=False)
    org_roles = forms.MultipleChoiceField(
        choices=OrgRole.choices, required=False, widget=forms.CheckboxSelectMultiple, label="Org roles"
    )

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A person with this email already exists.")
        return email


class OrgRolesForm(forms.Form):
    org_roles = forms.MultipleChoiceField(
        choices=OrgRole.choices, required=False, widget=forms.CheckboxSelectMultiple, label="Org roles"
    )


class DeactivateForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    confirm = forms.BooleanField(label="Yes, deactivate this person now")


class SsoMappingForm(forms.ModelForm):
    class Meta:
        model = SsoGroupMapping
        fields = ["group", "team", "team_role", "org_role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team_role"].choices = [("", "—")] + list(TeamRole.choices)
        self.fields["org_role"].choices = [("", "—")] + list(OrgRole.choices)

    def clean(self):
        data = super().clean()
        team, team_role, org_role = data.get("team"), data.get("team_role"), data.get("org_role")
        if team and org_role:
            self.add_error("org_role", "Choose a team with a role, or an org role, not both.")
        elif team and not team_role:
            self.add_error("team_role", "Choose the role this group gives in the team.")
        elif not team and not org_role:
            self.add_error("team", "Choose a team (with a role) or an org role.")
        elif team_role and not team:
            self.add_error("team", "A team role needs a team.")
        elif data.get("group") and self._duplicate(data["group"], team, org_role):
            # On the field, in words: the model's own constraint check would say "Constraint … is violated".
            # (The service still refuses a duplicate that slips in between this check and the save.)
            self.add_error("group", "This group already has that mapping.")
        return data

    def _duplicate(self, group, team, org_role) -> bool:
        existing = SsoGroupMapping.objects.filter(group=group)
        return existing.filter(team=team).exists() if team else existing.filter(org_role=org_role).exists()
