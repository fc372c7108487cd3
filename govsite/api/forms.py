from datetime import timedelta

from django import forms
from django.utils import timezone

from govsite.api.models import ApiToken

LIFETIMES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (180, "180 days"), (365, "1 year")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “nightly cost export”.")
    scope = forms.ChoiceField(
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        widget=forms.RadioSelect,
        help_text="A read-only token cannot change anything, whatever your role.",
    )
    lifetime = forms.TypedChoiceField(
        choices=LIFETIMES, coerce=int, initial=90, label="Expires after", help_text="Every token expires."
    )

    @property
    def expires_at(self):
        return timezone.now() + timedelta(days=self.cleaned_data["lifetime"])
