from django import forms

from govsite.accounts.models import Team


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=254, label="Actor (email contains)")
    action = forms.CharField(required=False, max_length=80, label="Action (starts with)")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False)
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data
