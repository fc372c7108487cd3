"""Key requests, the approval queue and keys over the API: the same services, selectors and
permissions as the pages (keys/views.py)."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from govsite.api.common import (
    MAX_INT,
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
from keys import selectors, services
from keys.models import DataClassification, KeyKind, KeyRequest, ModelPolicy, VirtualKey

TAG = ["keys"]


def _for(request) -> dict:
    """Serializer context: whose `actions` to answer (permissions/ answers them)."""
    return {"user": request.user}


class KeyActionsOutput(serializers.Serializer):
    class Meta:
        ref_name = "KeyActions"

    reveal = serializers.BooleanField()
    rotate = serializers.BooleanField()
    revoke = serializers.BooleanField()
    reassign = serializers.BooleanField()


class KeyRequestActionsOutput(serializers.Serializer):
    class Meta:
        ref_name = "KeyRequestActions"

    cancel = serializers.BooleanField()
    decide = serializers.BooleanField()


class KeyRequestOutput(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True)
    owner = serializers.EmailField(source="owner.email", read_only=True)
    data_classification = serializers.SlugRelatedField(slug_field="key", read_only=True)
    models = serializers.SlugRelatedField(source="requested_models", slug_field="name", many=True, read_only=True)
    actions = serializers.SerializerMethodField(help_text="What the caller may do with this request now.")

    class Meta:
        ref_name = "KeyRequest"
        model = KeyRequest
        fields = [
            "id",
            "team",
            "kind",
            "service_name",
            "requested_by",
            "owner",
            "purpose",
            "data_classification",
            "models",
            "monthly_budget",
            "rpm_limit",
            "tpm_limit",
            "expiry_days",
            "status",
            "needs_admin_approval",
            "approved_by_policy",
            "decided_at",
            "decision_note",
            "created_at",
            "actions",
        ]
        read_only_fields = fields

    @extend_schema_field(KeyRequestActionsOutput(allow_null=True))
    def get_actions(self, key_request) -> dict | None:
        user = self.context.get("user")
        if user is None:
            return None
        return KeyRequestActionsOutput(permissions.key_request_actions_for(user, key_request)).data


class KeyDecisionOutput(KeyRequestOutput):
    key_id = serializers.SerializerMethodField(
        help_text="The key made by this decision; null after a rejection or while a second approval is needed."
    )

    class Meta(KeyRequestOutput.Meta):
        ref_name = "KeyDecision"
        fields = [*KeyRequestOutput.Meta.fields, "key_id"]
        read_only_fields = fields

    def get_key_id(self, obj) -> int | None:
        return self.context.get("key_id")


class VirtualKeyOutput(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = serializers.EmailField(source="owner.email", read_only=True)
    allowed_models = serializers.ListField(child=serializers.CharField(), read_only=True)
    masked = serializers.CharField(read_only=True, help_text="The last four characters; the secret is never shown.")
    can_reveal = serializers.BooleanField(
        read_only=True, help_text="The secret is still waiting for its one reveal by the owner."
    )
    request = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    rotated_from = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    actions = serializers.SerializerMethodField(help_text="What the caller may do with this key now.")

    class Meta:
        ref_name = "Key"
        model = VirtualKey
        fields = [
            "id",
            "alias",
            "team",
            "owner",
            "kind",
            "service_name",
            "status",
            "masked",
            "can_reveal",
            "allowed_models",
            "max_budget",
            "budget_duration",
            "rpm_limit",
            "tpm_limit",
            "expires_at",
            "request",
            "rotated_from",
            "grace_until",
            "revealed_at",
            "provisioned_at",
            "revoke_requested_at",
            "revoked_at",
            "revoke_reason",
            "owner_needs_reassignment",
            "created_at",
            "actions",
        ]
        read_only_fields = fields

    @extend_schema_field(KeyActionsOutput(allow_null=True))
    def get_actions(self, key) -> dict | None:
        user = self.context.get("user")
        if user is None:
            return None
        return KeyActionsOutput(permissions.key_actions_for(user, key)).data


class KeySecretOutput(serializers.Serializer):
    class Meta:
        ref_name = "KeySecret"

    id = serializers.IntegerField()
    alias = serializers.CharField()
    secret = serializers.CharField(help_text="Shown this once; govsite keeps no copy.")
    base_url = serializers.URLField(help_text="The gateway to use it with.")


# --- key requests -----------------------------------------------------------------------------------


class KeyRequestFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=KeyRequest.Status.choices, required=False)


class KeyRequestListCreateApi(ApiView):
    class Input(StrictSerializer):
        class Meta:
            ref_name = "KeyRequestInput"

        team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
        kind = serializers.ChoiceField(choices=KeyKind.choices, default=KeyKind.PERSONAL)
        service_name = serializers.CharField(required=False, allow_blank=True, max_length=120, default="")
        owner = serializers.SlugRelatedField(
            slug_field="email",
            queryset=User.objects.filter(is_active=True),
            required=False,
            allow_null=True,
            default=None,
            help_text="For a service key: the person who answers for it (a member of the team).",
        )
        purpose = serializers.CharField(max_length=4000, allow_blank=True)
        data_classification = serializers.SlugRelatedField(slug_field="key", queryset=DataClassification.objects.all())
        models = serializers.SlugRelatedField(slug_field="name", many=True, queryset=ModelPolicy.objects.all())
        monthly_budget = serializers.DecimalField(max_digits=12, decimal_places=2)
        rpm_limit = serializers.IntegerField(required=False, allow_null=True, default=None, max_value=MAX_INT)
        tpm_limit = serializers.IntegerField(required=False, allow_null=True, default=None, max_value=MAX_INT)
        expiry_days = serializers.IntegerField(default=90, max_value=MAX_INT)

    @extend_schema(
        operation_id="key_requests_list_mine",
        summary="My key requests",
        tags=TAG,
        parameters=[KeyRequestFilter, *PAGE_PARAMETERS],
        responses={200: paginated(KeyRequestOutput), **errors(*READ_ERRORS)},
    )
    def get(self, request):
        filters = validated(KeyRequestFilter, request.query_params)
        requests = selectors.my_key_requests(user=request.user, status=filters.get("status", ""))
        return paginated_response(self, requests, KeyRequestOutput, context=_for(request))

    @extend_schema(
        operation_id="key_requests_create",
        summary="Ask for a key",
        description="Members ask within their teams. A team's auto-approve rule may approve it at once.",
        tags=TAG,
        request=Input,
        responses={201: KeyRequestOutput, **errors(*WRITE_ERRORS)},
        examples=[
            OpenApiExample(
                "A personal key",
                value={
                    "team": "payments",
                    "purpose": "Claude Code for the refactor",
                    "data_classification": "internal",
                    "models": ["gpt-4o"],
                    "monthly_budget": "50.00",
                    "expiry_days": 30,
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        permissions.require(
            permissions.can_request_any_key(request.user), "Keys are requested within a team, and you are not in one."
        )
        data = validated(self.Input, request.data)
        key_request = services.key_request_create(requester=request.user, data=services.KeyRequestInput(**data))
        return Response(KeyRequestOutput(key_request).data, status=201)


class KeyRequestDetailApi(ApiView):
    @extend_schema(
        operation_id="key_requests_retrieve",
        summary="One key request",
        tags=TAG,
        responses={200: KeyRequestOutput, **errors(404)},
    )
    def get(self, request, pk):
        key_request = get_object_or_404(selectors.key_requests_visible(user=request.user), pk=pk)
        return Response(KeyRequestOutput(key_request, context=_for(request)).data)


class KeyRequestCancelApi(ApiView):
    @extend_schema(
        operation_id="key_requests_cancel",
        summary="Cancel my pending request",
        tags=TAG,
        request=None,
        responses={200: KeyRequestOutput, **errors(404, 409, 413)},
    )
    def post(self, request, pk):
        key_request = get_object_or_404(selectors.key_requests_visible(user=request.user), pk=pk)
        return Response(KeyRequestOutput(services.key_request_cancel(request=key_request, actor=request.user)).data)


# --- approval queue ------------------------------------------------------------------------------------


class ApprovalFilter(serializers.Serializer):
    team = serializers.SlugField(required=False, help_text="A team's slug.")


class ApprovalQueueApi(ApiView):
    @extend_schema(
        operation_id="approvals_list",
        summary="Key requests waiting for my decision",
        description="Never my own requests (nobody decides their own). Approvers and admins only.",
        tags=["approvals"],
        parameters=[ApprovalFilter, *PAGE_PARAMETERS],
        responses={200: paginated(KeyRequestOutput), **errors(*READ_ERRORS)},
    )
    def get(self, request):
        permissions.require(
            permissions.has_key_approval_queue(request.user), "Only team approvers and admins have a queue."
        )
        filters = validated(ApprovalFilter, request.query_params)
        queue = selectors.key_request_queue(user=request.user, team_slug=filters.get("team", ""))
        return paginated_response(self, queue, KeyRequestOutput, context=_for(request))


class ApprovalDecideApi(ApiView):
    second_factor_methods = ("POST",)  # the pages' step-up, for session calls

    class Input(StrictSerializer):
        class Meta:
            ref_name = "KeyDecisionInput"

        decision = serializers.ChoiceField(choices=["approve", "reject"])
        note = serializers.CharField(
            required=False, allow_blank=True, max_length=2000, default="", help_text="Required to reject."
        )

    @extend_schema(
        operation_id="approvals_decide",
        summary="Approve or reject a key request in my queue",
        description="A request outside my queue (another team's, my own, already decided) is a 404.",
        tags=["approvals"],
        request=Input,
        responses={200: KeyDecisionOutput, **errors(*WRITE_ERRORS)},
    )
    def post(self, request, pk):
        permissions.require(
            permissions.has_key_approval_queue(request.user), "Only team approvers and admins decide key requests."
        )
        key_request = get_object_or_404(selectors.key_request_queue(user=request.user), pk=pk)  # 404 outside scope
        data = validated(self.Input, request.data)
        key = None
        if data["decision"] == "approve":
            key = services.key_request_approve(request=key_request, approver=request.user, note=data["note"])
        else:
            services.key_request_reject(request=key_request, approver=request.user, note=data["note"])
        key_request = selectors.key_requests_visible(user=request.user).get(pk=pk)
        return Response(KeyDecisionOutput(key_request, context={"key_id": key.pk if key else None}).data)


# --- keys -----------------------------------------------------------------------------------------------


class KeyFilter(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=[
            ("mine", "Keys I own"),
            ("team", "Keys of the teams I decide for (not mine)"),
            ("all", "Every key I may see"),
        ],
        default="mine",
    )
    status = serializers.ChoiceField(choices=VirtualKey.Status.choices, required=False)
    team = serializers.SlugField(required=False, help_text="A team's slug.")


class KeyListApi(ApiView):
    @extend_schema(
        operation_id="keys_list",
        summary="My keys, or my teams' keys",
        tags=TAG,
        parameters=[KeyFilter, *PAGE_PARAMETERS],
        responses={200: paginated(VirtualKeyOutput), **errors(*READ_ERRORS)},
    )
    def get(self, request):
        filters = validated(KeyFilter, request.query_params)
        keys = selectors.key_list(
            user=request.user,
            scope=filters["scope"],
            status=filters.get("status", ""),
            team_slug=filters.get("team", ""),
        )
        return paginated_response(self, keys, VirtualKeyOutput, context=_for(request))


class KeyDetailApi(ApiView):
    @extend_schema(
        operation_id="keys_retrieve", summary="One key", tags=TAG, responses={200: VirtualKeyOutput, **errors(404)}
    )
    def get(self, request, pk):
        key = get_object_or_404(selectors.keys_visible(user=request.user), pk=pk)
        return Response(VirtualKeyOutput(key, context=_for(request)).data)


class KeyRevealApi(ApiView):
    @extend_schema(
        operation_id="keys_reveal",
        summary="Reveal my key's secret, once",
        description="Only the owner, only once, only when the key is active; govsite then erases its copy.",
        tags=TAG,
        request=None,
        responses={200: KeySecretOutput, **errors(404, 409, 413)},
    )
    def post(self, request, pk):
        key = get_object_or_404(selectors.keys_visible(user=request.user), pk=pk)
        secret = services.key_reveal(key=key, actor=request.user)
        body = {"id": key.pk, "alias": key.alias, "secret": secret, "base_url": settings.GATEWAY_PUBLIC_URL}
        return Response(KeySecretOutput(body).data, headers={"Cache-Control": "no-store"})


class KeyRotateApi(ApiView):
    @extend_schema(
        operation_id="keys_rotate",
        summary="Rotate a key",
        description="A new key with the same grants; the old one keeps working for the grace period.",
        tags=TAG,
        request=None,
        responses={201: VirtualKeyOutput, **errors(404, 409, 413)},
    )
    def post(self, request, pk):
        key = get_object_or_404(selectors.keys_visible(user=request.user), pk=pk)
        return Response(VirtualKeyOutput(services.key_rotate(key=key, actor=request.user)).data, status=201)


class KeyRevokeApi(ApiView):
    class Input(StrictSerializer):
        class Meta:
            ref_name = "KeyRevokeInput"

        reason = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")

    @extend_schema(
        operation_id="keys_revoke",
        summary="Revoke a key",
        description="The owner, the team's approvers or an admin. The gateway deletes it within moments.",
        tags=TAG,
        request=Input,
        responses={200: VirtualKeyOutput, **errors(*WRITE_ERRORS)},
    )
    def post(self, request, pk):
        key = get_object_or_404(selectors.keys_visible(user=request.user), pk=pk)
        data = validated(self.Input, request.data)
        return Response(VirtualKeyOutput(services.key_revoke(key=key, actor=request.user, **data)).data)
