from datetime import date, timedelta
from decimal import Decimal

from django import forms

from budgets.models import Budget
from govsite.accounts.models import Team, User
from govsite.periods import form_period_validate
from keys.models import VirtualKey


class ThresholdsField(forms.CharField):
    """Percentages as "50, 80, 100"."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return []
        try:
            return sorted({int(part) for part in value.replace(";", ",").split(",") if part.strip()})
        except ValueError as exc:
            raise forms.ValidationError("Give whole percentages separated by commas, e.g. 50, 80, 100.") from exc

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return value


class BudgetForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"))
    user = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("email"),
        required=False,
        label="Person",
        help_text="Only for a personal budget within the team.",
    )
    key = forms.ModelChoiceField(
        queryset=None, required=False, label="Key", help_text="Only for the budget of one key."
    )
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"), label="Amount (USD)")
    period = forms.ChoiceField(choices=Budget.Period.choices, initial=Budget.Period.MONTHLY)
    period_start = forms.DateField(
        required=False, label="Custom period: first day", widget=forms.DateInput(attrs={"type": "date"})
    )
    period_end = forms.DateField(
        required=False, label="Custom period: last day", widget=forms.DateInput(attrs={"type": "date"})
    )
    thresholds = ThresholdsField(
        initial="50, 80, 100", label="Alert at (% of the budget)", help_text="Each alerts once per period."
    )
    block_at_100 = forms.BooleanField(required=False, label="Block the budget's keys at the gateway at 100%")
    approver_limit = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        initial=Decimal("0"),
        label="Approvers may grant increases up to (USD)",
        help_text="Larger increases are decided by finance.",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args, budget: Budget | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key"].queryset = VirtualKey.objects.filter(status__in=VirtualKey.LIVE_STATUSES).order_by("alias")
        if budget is not None:
            # Whose budget it is never changes; make a new one instead.
            for name in ("team", "user", "key"):
                self.fields[name].disabled = True
                self.fields[name].required = False

    def service_kwargs(self, *, editing: bool) -> dict:
        data = dict(self.cleaned_data)
        if editing:
            for name in ("team", "user", "key"):
                data.pop(name, None)
        else:
            data.pop("is_active", None)
        return data


class IncreaseRequestForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        label="Increase by (USD)",
    )
    permanent = forms.TypedChoiceField(
        choices=[("yes", "Permanently"), ("no", "Until a date")],
        coerce=lambda v: v == "yes",
        initial="yes",
        widget=forms.RadioSelect,
        label="For how long",
    )
    until = forms.DateField(
        required=False,
        label="Until (last day, inclusive)",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="For a temporary increase: it reverts by itself after this day.",
    )
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=4000)

    def clean(self):
        data = super().clean()
        if data.get("permanent") is False and not data.get("until"):
            self.add_error("until", "Give the last day of a temporary increase.")
        if data.get("permanent"):
            data["until"] = None
        return data

    @staticmethod
    def default_until() -> date:
        return date.today() + timedelta(days=30)  # noqa: DTZ011 - a form default, the server runs in UTC


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect)
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000, help_text="Required to reject."
    )


class IngestTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Which gateway uses it, e.g. “litellm production”.")


class PeriodForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(choices=[("key", "Per key"), ("team", "Per team")], required=False)

    def clean(self):
        data = super().clean()
        form_period_validate(self, "start", "end")
        return data
