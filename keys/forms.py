from django import forms
from django.core.exceptions import ValidationError

from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from keys import selectors, services
from keys.models import DataClassification, KeyKind, ModelPolicy, TeamKeyPolicy


class ModelChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        restricted = " · restricted: needs an admin's approval too" if obj.is_restricted else ""
        return f"{obj.name} ({obj.provider}) — up to {obj.max_classification.label} data{restricted}"


class KeyRequestForm(forms.Form):
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    kind = forms.ChoiceField(choices=KeyKind.choices, initial=KeyKind.PERSONAL, widget=forms.RadioSelect)
    service_name = forms.CharField(
        max_length=120,
        required=False,
        label="Service or project",
        help_text="For a service key: the service or project that will use it.",
    )
    owner = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Owner of the service key",
        help_text="The person who answers for a service key.",
    )
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label="Purpose and justification", max_length=4000
    )
    data_classification = forms.ModelChoiceField(
        queryset=DataClassification.objects.all(), empty_label=None, label="Most sensitive data the key will process"
    )
    models = ModelChoices(queryset=None, widget=forms.CheckboxSelectMultiple)
    monthly_budget = forms.DecimalField(max_digits=12, decimal_places=2, label="Monthly budget (USD)")
    rpm_limit = forms.IntegerField(required=False, label="Requests per minute (optional)")
    tpm_limit = forms.IntegerField(required=False, label="Tokens per minute (optional)")
    expiry_days = forms.IntegerField(initial=90, label="Expires after (days)")

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        teams = permissions.teams_visible_to(user).filter(memberships__user=user)
        self.fields["team"].queryset = teams
        self.fields["owner"].queryset = (
            User.objects.filter(is_active=True, memberships__team__in=teams).distinct().order_by("email")
        )
        self.fields["models"].queryset = selectors.requestable_models()
        self.fields["data_classification"].initial = DataClassification.objects.filter(key="internal").first()

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        self.request_input = services.KeyRequestInput(
            team=data["team"],
            kind=data["kind"],
            purpose=data.get("purpose", ""),
            data_classification=data["data_classification"],
            models=list(data["models"]),
            monthly_budget=data["monthly_budget"],
            expiry_days=data["expiry_days"],
            service_name=data.get("service_name") or "",
            owner=data.get("owner"),
            rpm_limit=data.get("rpm_limit"),
            tpm_limit=data.get("tpm_limit"),
        )
        try:
            services.key_request_validate(requester=self.user, data=self.request_input)
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return data


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class BulkDecisionForm(forms.Form):
    """One decision and one note for the requests ticked in the approval queue."""

    ids = forms.TypedMultipleChoiceField(
        coerce=int, choices=(), error_messages={"required": "Tick at least one request."}
    )
    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")], error_messages={"required": "Choose approve or reject."}
    )
    note = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any whole number is accepted here; the queue (scoped to the decider) says which exist for them.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("note") or "").strip():
            self.add_error("note", "Say why you reject them; each requester sees this.")
        return data


class ConfirmForm(forms.Form):
    reason = forms.CharField(required=False, max_length=200)


class ReassignForm(forms.Form):
    owner = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("email"))

    def __init__(self, *args, user=None, key=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None and key is not None:
            # The choices a page offers; the service checks the choice itself all the same.
            self.fields["owner"].queryset = permissions.key_owner_candidates(user, key)


class ModelPolicyForm(forms.ModelForm):
    class Meta:
        model = ModelPolicy
        fields = ["name", "provider", "note", "access", "max_classification", "flat_rate", "is_active"]


class ClassificationLabelForm(forms.Form):
    label = forms.CharField(max_length=60)


class TeamKeyPolicyForm(forms.ModelForm):
    class Meta:
        model = TeamKeyPolicy
        fields = ["max_expiry_days", "auto_approve", "auto_approve_max_budget"]
        labels = {"auto_approve_max_budget": "Auto-approve up to this monthly budget (USD)"}


class AdoptForm(forms.Form):
    team = forms.ModelChoiceField(queryset=None)
    owner = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("email"))
    kind = forms.ChoiceField(choices=KeyKind.choices, initial=KeyKind.SERVICE)
    service_name = forms.CharField(max_length=120, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.order_by("name")


class PeopleChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.display_name} <{obj.email}>" if obj.full_name else obj.email


class RolloutForm(forms.Form):
    """A rollout: the team, who (everyone, and those who join later, or a chosen list), one policy, one
    justification. The service checks the rules; its field errors land here."""

    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    whole_team = forms.ChoiceField(
        choices=[("yes", "Everyone in the team"), ("no", "Only the people chosen below")],
        initial="yes",
        widget=forms.RadioSelect,
        label="Who gets a key",
    )
    people = PeopleChoices(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="For a chosen list: active members of the team.",
    )
    include_joiners = forms.BooleanField(
        required=False, label="People who join the team later get a key too (everyone in the team only)"
    )
    ends_on = forms.DateField(
        required=False,
        label="Until (YYYY-MM-DD)",
        help_text="The last day on which someone joining the team still gets a key.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label="Purpose and justification", max_length=4000
    )
    data_classification = forms.ModelChoiceField(
        queryset=DataClassification.objects.all(), empty_label=None, label="Most sensitive data the keys will process"
    )
    models = ModelChoices(queryset=None, widget=forms.CheckboxSelectMultiple)
    monthly_budget = forms.DecimalField(max_digits=12, decimal_places=2, label="Monthly budget per key (USD)")
    expiry_days = forms.IntegerField(initial=90, label="Each key expires after (days)")

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        teams = permissions.teams_user_decides_for(user).order_by("name")
        self.fields["team"].queryset = teams
        self.fields["people"].queryset = (
            User.objects.filter(is_active=True, memberships__team__in=teams).distinct().order_by("email")
        )
        self.fields["models"].queryset = selectors.requestable_models()
        self.fields["data_classification"].initial = DataClassification.objects.filter(key="internal").first()

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        self.rollout_input = services.RolloutInput(
            team=data["team"],
            purpose=data.get("purpose", ""),
            data_classification=data["data_classification"],
            models=list(data["models"]),
            monthly_budget=data["monthly_budget"],
            expiry_days=data["expiry_days"],
            whole_team=data["whole_team"] == "yes",
            people=list(data.get("people") or []),
            include_joiners=bool(data.get("include_joiners")),
            ends_on=data.get("ends_on"),
        )
        try:
            services.rollout_validate(requester=self.user, data=self.rollout_input)
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return data


class RolloutRevokeForm(forms.Form):
    reason = forms.CharField(max_length=200, required=False, help_text="Told to each person whose key is revoked.")
