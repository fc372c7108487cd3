"""Budgets and budget-increase requests over the API: the same services, selectors and permissions
as the pages (budgets/views.py)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from budgets import selectors, services
from budgets.models import Budget, BudgetIncreaseRequest
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from govsite.api.common import (
    PAGE_PARAMETERS,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiView,
    StrictSerializer,
    errors,
    paginated,
    paginated_response,
    validated,
)
from keys.models import VirtualKey

TAG = ["budgets"]


class BudgetPeriodOutput(serializers.Serializer):
    class Meta:
        ref_name = "BudgetPeriod"

    period_start = serializers.DateField()
    period_end = serializers.DateField()
    spend = serializers.DecimalField(max_digits=None, decimal_places=6, help_text="Ledger spend so far (USD).")
    percent = serializers.DecimalField(max_digits=None, decimal_places=1)
    projected_date = serializers.DateField(
        allow_null=True, help_text="When 100% is reached at the period's rate so far (null: no spend yet)."
    )


class BudgetOutput(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.EmailField(source="user.email", allow_null=True, read_only=True)
    key = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    key_alias = serializers.CharField(source="key.alias", allow_null=True, read_only=True)
    scope = serializers.ChoiceField(choices=["team", "person", "key"], read_only=True)
    thresholds = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    current_period = serializers.SerializerMethodField()

    class Meta:
        ref_name = "Budget"
        model = Budget
        fields = [
            "id",
            "team",
            "scope",
            "user",
            "key",
            "key_alias",
            "amount",
            "period",
            "period_start",
            "period_end",
            "thresholds",
            "block_at_100",
            "approver_limit",
            "is_active",
            "current_period",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(BudgetPeriodOutput(allow_null=True))
    def get_current_period(self, budget):
        status = self.context.get("statuses", {}).get(budget.pk) or selectors.budget_status(budget)
        if not status.running:
            return None
        return BudgetPeriodOutput(
            {
                "period_start": status.period_start,
                "period_end": status.period_end,
                "spend": status.spend,
                "percent": status.percent,
                "projected_date": status.projected_date(),
            }
        ).data


def _statuses(budgets) -> dict:
    """Serializer context: the page's budget statuses, read together (a fixed number of queries)."""
    return {"statuses": {status.budget.pk: status for status in selectors.budget_statuses(budgets)}}


class BudgetIncreaseOutput(serializers.ModelSerializer):
    budget = serializers.PrimaryKeyRelatedField(read_only=True)
    team = serializers.SlugRelatedField(source="budget.team", slug_field="slug", read_only=True)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True)
    decided_by = serializers.EmailField(source="decided_by.email", allow_null=True, read_only=True)

    class Meta:
        ref_name = "BudgetIncrease"
        model = BudgetIncreaseRequest
        fields = [
            "id",
            "budget",
            "team",
            "amount",
            "until",
            "justification",
            "status",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_note",
            "amount_before",
            "amount_after",
            "reverted_at",
            "created_at",
        ]
        read_only_fields = fields


# --- budgets ------------------------------------------------------------------------------------------


class BudgetFilter(serializers.Serializer):
    team = serializers.SlugField(required=False, help_text="A team's slug.")
    scope = serializers.ChoiceField(choices=["team", "person", "key"], required=False)


class BudgetListCreateApi(ApiView):
    class Input(StrictSerializer):
        class Meta:
            ref_name = "BudgetCreateInput"

        team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
        user = serializers.SlugRelatedField(
            slug_field="email",
            queryset=User.objects.filter(is_active=True),
            required=False,
            allow_null=True,
            default=None,
            help_text="For a person's budget within the team (their email).",
        )
        key = serializers.PrimaryKeyRelatedField(
            queryset=VirtualKey.objects.filter(status__in=VirtualKey.LIVE_STATUSES),
            required=False,
            allow_null=True,
            default=None,
            help_text="For one key's budget (its id).",
        )
        amount = serializers.DecimalField(max_digits=12, decimal_places=2)
        period = serializers.ChoiceField(choices=Budget.Period.choices, default=Budget.Period.MONTHLY)
        period_start = serializers.DateField(required=False, allow_null=True, default=None)
        period_end = serializers.DateField(required=False, allow_null=True, default=None)
        thresholds = serializers.ListField(
            child=serializers.IntegerField(), min_length=1, max_length=20, default=lambda: [50, 80, 100]
        )
        block_at_100 = serializers.BooleanField(default=False)
        approver_limit = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, default="0")

    @extend_schema(
        operation_id="budgets_list",
        summary="Budgets I may see",
        tags=TAG,
        parameters=[BudgetFilter, *PAGE_PARAMETERS],
        responses={200: paginated(BudgetOutput), **errors(*READ_ERRORS)},
    )
    def get(self, request):
        filters = validated(BudgetFilter, request.query_params)
        budgets = selectors.budget_list(
            user=request.user, team_slug=filters.get("team", ""), scope=filters.get("scope", "")
        )
        return paginated_response(self, budgets, BudgetOutput, context=_statuses)

    @extend_schema(
        operation_id="budgets_create",
        summary="Set a budget (admins)",
        tags=TAG,
        request=Input,
        responses={201: BudgetOutput, **errors(*WRITE_ERRORS)},
    )
    def post(self, request):
        permissions.require(permissions.can_manage_budgets(request.user), "Only admins can set budgets.")
        data = validated(self.Input, request.data)
        budget = services.budget_create(actor=request.user, **data)
        return Response(BudgetOutput(budget).data, status=201)


class BudgetDetailApi(ApiView):
    class Input(StrictSerializer):
        class Meta:
            ref_name = "BudgetUpdateInput"

        amount = serializers.DecimalField(max_digits=12, decimal_places=2, required=False)
        period = serializers.ChoiceField(choices=Budget.Period.choices, required=False)
        period_start = serializers.DateField(required=False, allow_null=True)
        period_end = serializers.DateField(required=False, allow_null=True)
        thresholds = serializers.ListField(
            child=serializers.IntegerField(), min_length=1, max_length=20, required=False
        )
        block_at_100 = serializers.BooleanField(required=False)
        approver_limit = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)
        is_active = serializers.BooleanField(required=False)

    @extend_schema(
        operation_id="budgets_retrieve", summary="One budget", tags=TAG, responses={200: BudgetOutput, **errors(404)}
    )
    def get(self, request, pk):
        return Response(BudgetOutput(get_object_or_404(selectors.budget_list(user=request.user), pk=pk)).data)

    @extend_schema(
        operation_id="budgets_update",
        summary="Change a budget (admins)",
        description="Whose budget it is (team, person, key) never changes; make a new one instead.",
        tags=TAG,
        request=Input,
        responses={200: BudgetOutput, **errors(*WRITE_ERRORS)},
    )
    def patch(self, request, pk):
        permissions.require(permissions.can_manage_budgets(request.user), "Only admins can change budgets.")
        budget = get_object_or_404(selectors.budget_list(user=request.user), pk=pk)
        data = validated(self.Input, request.data)
        return Response(BudgetOutput(services.budget_update(actor=request.user, budget=budget, **data)).data)


# --- budget-increase requests ----------------------------------------------------------------------------


class BudgetIncreaseCreateApi(ApiView):
    class Input(StrictSerializer):
        class Meta:
            ref_name = "BudgetIncreaseInput"

        amount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="How much to add (USD).")
        justification = serializers.CharField(max_length=4000, allow_blank=True)
        until = serializers.DateField(
            required=False,
            allow_null=True,
            default=None,
            help_text="Last day of a temporary increase; null: permanent.",
        )

    @extend_schema(
        operation_id="budget_increases_create",
        summary="Ask for more of a budget",
        description="Members ask for their team's budget; a personal budget is asked for by its person.",
        tags=TAG,
        request=Input,
        responses={201: BudgetIncreaseOutput, **errors(*WRITE_ERRORS)},
    )
    def post(self, request, pk):
        budget = get_object_or_404(selectors.budget_list(user=request.user), pk=pk)
        permissions.require(
            permissions.can_request_budget_increase(request.user, budget),
            "Only the team's members ask for more of its budget (a personal budget: its person).",
        )
        data = validated(self.Input, request.data)
        increase = services.budget_increase_request_create(budget=budget, requester=request.user, **data)
        return Response(BudgetIncreaseOutput(increase).data, status=201)


class BudgetIncreaseFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=BudgetIncreaseRequest.Status.choices, required=False)
    team = serializers.SlugField(required=False, help_text="A team's slug.")


class BudgetIncreaseListApi(ApiView):
    @extend_schema(
        operation_id="budget_increases_list",
        summary="Budget-increase requests I may see",
        tags=TAG,
        parameters=[BudgetIncreaseFilter, *PAGE_PARAMETERS],
        responses={200: paginated(BudgetIncreaseOutput), **errors(*READ_ERRORS)},
    )
    def get(self, request):
        filters = validated(BudgetIncreaseFilter, request.query_params)
        increases = selectors.increase_list(
            user=request.user, status=filters.get("status", ""), team_slug=filters.get("team", "")
        )
        return paginated_response(self, increases, BudgetIncreaseOutput)


class BudgetIncreaseQueueApi(ApiView):
    @extend_schema(
        operation_id="budget_increases_queue",
        summary="Budget increases waiting for my decision",
        description="Approvers see their teams' requests within the approver limit; finance and admins all. "
        "Never one I asked for or benefit from.",
        tags=TAG,
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(BudgetIncreaseOutput), **errors(*READ_ERRORS)},
    )
    def get(self, request):
        permissions.require(
            permissions.can_decide_budget_increases(request.user),
            "Only approvers, finance and admins decide budget increases.",
        )
        return paginated_response(self, selectors.increase_queue(user=request.user), BudgetIncreaseOutput)


class BudgetIncreaseDetailApi(ApiView):
    @extend_schema(
        operation_id="budget_increases_retrieve",
        summary="One budget-increase request",
        tags=TAG,
        responses={200: BudgetIncreaseOutput, **errors(404)},
    )
    def get(self, request, pk):
        increase = get_object_or_404(selectors.increases_visible(user=request.user), pk=pk)
        return Response(BudgetIncreaseOutput(increase).data)


class BudgetIncreaseDecideApi(ApiView):
    second_factor_methods = ("POST",)  # the pages' step-up, for session calls

    class Input(StrictSerializer):
        class Meta:
            ref_name = "BudgetDecisionInput"

        decision = serializers.ChoiceField(choices=["approve", "reject"])
        note = serializers.CharField(
            required=False, allow_blank=True, max_length=2000, default="", help_text="Required to reject."
        )

    @extend_schema(
        operation_id="budget_increases_decide",
        summary="Approve or reject a budget increase",
        description="Approvers within the budget's approver limit, finance and admins any amount; "
        "nobody one they asked for or benefit from: their own budget or key's (403).",
        tags=TAG,
        request=Input,
        responses={200: BudgetIncreaseOutput, **errors(*WRITE_ERRORS)},
    )
    def post(self, request, pk):
        permissions.require(
            permissions.can_decide_budget_increases(request.user),
            "Only approvers, finance and admins decide budget increases.",
        )
        increase = get_object_or_404(selectors.increases_visible(user=request.user), pk=pk)
        permissions.require_can_decide_budget_increase(request.user, increase)
        data = validated(self.Input, request.data)
        if data["decision"] == "approve":
            services.budget_increase_approve(increase=increase, approver=request.user, note=data["note"])
        else:
            services.budget_increase_reject(increase=increase, approver=request.user, note=data["note"])
        return Response(BudgetIncreaseOutput(selectors.increases_visible(user=request.user).get(pk=pk)).data)
