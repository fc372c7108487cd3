from django import forms

from govsite.accounts.models import OrgRole, Team, TeamRole, User
from govsite.accounts.slack import webhook_hint


class TeamForm(forms.ModelForm):
    """The Slack webhook URL is write-only: once saved it is shown by its hint, never whole; leaving the field
    empty keeps it, ticking "remove" clears it."""

    slack_webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Slack webhook URL",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="An incoming-webhook URL: budget alerts, and key and increase requests waiting for the team's "
        "approvers (with their decisions), are posted there.",
    )
    remove_slack_webhook = forms.BooleanField(required=False, label="Remove the Slack webhook")

    class Meta:
        model = Team
        fields = ["name", "slug", "description", "cost_centre"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"slug": "Short name used in URLs and as the team id in the gateway; letters, digits, -."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.slack_webhook_url if self.instance.pk else ""
        if current:
            self.fields["slack_webhook_url"].help_text = (
                f"Set ({webhook_hint(current)}). Leave empty to keep it, or enter a new URL to replace it. "
                + self.fields["slack_webhook_url"].help_text
            )
        else:
            del self.fields["remove_slack_webhook"]

    def clean(self):
        data = super().clean()
        url = data.get("slack_webhook_url", "")
        if data.pop("remove_slack_webhook", False):
            if url:
                self.add_error("slack_webhook_url", "Either enter a new URL or remove the webhook, not both.")
            data["slack_webhook_url"] = ""
        elif not url and self.instance.pk:
            data.pop("slack_webhook_url", None)  # kept as it is
        return data


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
