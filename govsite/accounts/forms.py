from django import forms

from govsite.accounts.models import OrgRole, Team, TeamRole, User


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


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(choices=TeamRole.choices)


class PersonCreateForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=200, required=False)
    org_roles = forms.MultipleChoiceField(
        choices=OrgRole.choices, required=False, widget=forms.CheckboxSelectMultiple, label="Org roles"
    )


class OrgRolesForm(forms.Form):
    org_roles = forms.MultipleChoiceField(
        choices=OrgRole.choices, required=False, widget=forms.CheckboxSelectMultiple, label="Org roles"
    )


class DeactivateForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    confirm = forms.BooleanField(label="Yes, deactivate this person now")


class SsoMappingForm(forms.Form):
    """The fields only: which combinations are valid, and duplicates, are the service's to say
    (`sso_mapping_create`); the view shows its errors on these fields."""

    group = forms.CharField(max_length=200, help_text="The group name exactly as the groups claim sends it.")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False)
    team_role = forms.ChoiceField(choices=[("", "—"), *TeamRole.choices], required=False)
    org_role = forms.ChoiceField(choices=[("", "—"), *OrgRole.choices], required=False)
