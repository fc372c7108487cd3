from django import forms

from govsite.accounts.models import Team
from govsite.periods import form_period_validate


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=254, label="Actor (email contains)")
    action = forms.CharField(required=False, max_length=80, label="Action (starts with)")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False)
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        form_period_validate(self, "date_from", "date_to")
        return data


# --- the auditor workspace -----------------------------------------------------------------------------


def _date_field(label: str, **kwargs) -> forms.DateField:
    return forms.DateField(label=label, widget=forms.DateInput(attrs={"type": "date"}), **kwargs)


class _TeamChoices(forms.ModelMultipleChoiceField):
    def __init__(self, **kwargs):
        super().__init__(
            queryset=Team.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple, **kwargs
        )


class PeriodForm(forms.Form):
    period_start = _date_field("From (UTC day)")
    period_end = _date_field("To (inclusive)")

    def clean(self):
        data = super().clean()
        form_period_validate(self, "period_start", "period_end")
        return data


class EvidenceExportForm(PeriodForm):
    teams = _TeamChoices(help_text="None ticked: every team. The audit log extract always covers everything.")
    sample_size = forms.IntegerField(
        min_value=0,
        max_value=1000,
        initial=25,
        required=False,
        label="Sample size",
        help_text="How many key creations to draw at random for samples.csv (auditors draw 25–40; 0 for none).",
    )
    sample_seed = forms.CharField(
        max_length=64, required=False, label="Sample seed", help_text="Empty: a new seed, written in the manifest."
    )


class SampleForm(PeriodForm):
    population = forms.ChoiceField(
        choices=[("key_creations", "Key approvals: every key created in the period, with its request and approvals")],
        initial="key_creations",
        required=False,
        help_text="What the sample is drawn from.",
    )
    size = forms.IntegerField(
        label="Sample size", initial=25, help_text="How many keys to draw at random (auditors draw 25–40)."
    )
    seed = forms.CharField(
        max_length=64,
        required=False,
        help_text="The same seed and period draw the same keys. Empty: a new seed is chosen and shown.",
    )
    teams = _TeamChoices(help_text="None ticked: every team.")


class AccessReviewOpenForm(forms.Form):
    name = forms.CharField(max_length=200, initial="Quarterly key access review")
    due_on = _date_field("Due date", help_text="Reviewers decide by the end of this day (UTC).")
    on_due = forms.ChoiceField(
        label="At the due date, keys nobody reviewed are",
        choices=[("revoke", "revoked"), ("escalate", "escalated to the admins")],
        widget=forms.RadioSelect,
        initial="escalate",
    )
    teams = _TeamChoices(help_text="None ticked: every team. Every live key in scope is snapshotted when you open it.")
    confirm_revoke = forms.BooleanField(
        required=False,
        label="Yes: at the due date, revoke every key nobody has reviewed",
        help_text="Needed only when unreviewed keys are revoked. Their owners lose access at the gateway at once.",
    )

    def clean(self):
        data = super().clean()
        if data.get("on_due") == "revoke" and not data.get("confirm_revoke"):
            self.add_error(
                "confirm_revoke",
                "Confirm that keys nobody reviews by the due date are revoked, or choose to escalate them instead.",
            )
        return data


class AccessReviewDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("keep", "Keep"), ("reduce", "Reduce (fewer models or a lower budget)"), ("revoke", "Revoke")],
        widget=forms.RadioSelect,
    )
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        help_text="Required: why this key keeps, loses or changes its access. Auditors read it.",
    )
    keep_models = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Reduce: models the key keeps"
    )
    max_budget = forms.DecimalField(
        required=False, max_digits=12, decimal_places=2, min_value=0.01, label="Reduce: new monthly budget (USD)"
    )
    confirm_revoke = forms.BooleanField(
        required=False,
        label="Revoke: yes, revoke this key now",
        help_text="The key stops working at the gateway within a minute; its owner can request a new one.",
    )

    def __init__(self, *args, key_models: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep_models"].choices = [(m, m) for m in key_models]

    def clean(self):
        data = super().clean()
        if data.get("decision") == "revoke" and not data.get("confirm_revoke"):
            self.add_error("confirm_revoke", "Tick the box to confirm the revocation.")
        return data


class SignOffForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        label="Sign-off statement",
        help_text="What was reviewed and the outcome, in your words. Shown in the evidence bundle.",
    )
