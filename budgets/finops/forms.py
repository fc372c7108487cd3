"""Forms of the FinOps pages: they parse input; the services validate it."""

from __future__ import annotations

from datetime import date

from django import forms

from budgets.models import FocusFormat, FocusSchedule
from budgets.models.finops import STRICT_HELP
from govsite.periods import form_period_validate


class FocusExportForm(forms.Form):
    period_start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    format = forms.ChoiceField(choices=FocusFormat.choices, initial=FocusFormat.PARQUET)
    strict = forms.BooleanField(required=False, label="Strict FOCUS (leave unpriced rows out)", help_text=STRICT_HELP)

    def clean(self):
        cleaned = super().clean()
        form_period_validate(self, "period_start", "period_end")
        return cleaned


class FocusScheduleForm(forms.ModelForm):
    s3_endpoint_url = forms.URLField(
        required=False, assume_scheme="https", label="S3 endpoint URL", help_text="Empty for AWS itself."
    )

    class Meta:
        model = FocusSchedule
        fields = [
            "name",
            "frequency",
            "format",
            "strict",
            "target",
            "directory",
            "s3_endpoint_url",
            "s3_bucket",
            "s3_prefix",
            "s3_region",
        ]


class MonthForm(forms.Form):
    month = forms.CharField(required=False, help_text="YYYY-MM")

    def clean_month(self) -> date | None:
        value = (self.cleaned_data.get("month") or "").strip()
        if not value:
            return None
        try:
            year, month = (int(part) for part in value.split("-"))
            if not 2000 <= year <= 2999:
                raise ValueError(year)
            return date(year, month, 1)
        except ValueError as exc:
            raise forms.ValidationError("Give a month as YYYY-MM.") from exc


class ChargebackCloseForm(forms.Form):
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class ChargebackReopenForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
