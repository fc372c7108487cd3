"""Key requests and the approval queue over the API: the same services, selectors and permissions
as the pages."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from govsite.accounts.models import Team, User
from keys import selectors, services
from keys.models import DataClassification, KeyKind, KeyRequest, ModelPolicy


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error that names them, not silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class KeyRequestOutput(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True)
    owner = serializers.EmailField(source="owner.email", read_only=True)
    data_classification = serializers.SlugRelatedField(slug_field="key", read_only=True)
    models = serializers.SlugRelatedField(source="requested_models", slug_field="name", many=True, read_only=True)

    class Meta:
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
        ]


class KeyRequestListCreateApi(APIView):
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
        )
        purpose = serializers.CharField(max_length=4000, allow_blank=True)
        data_classification = serializers.SlugRelatedField(slug_field="key", queryset=DataClassification.objects.all())
        models = serializers.SlugRelatedField(slug_field="name", many=True, queryset=ModelPolicy.objects.all())
        monthly_budget = serializers.DecimalField(max_digits=12, decimal_places=2)
        rpm_limit = serializers.IntegerField(required=False, allow_null=True, default=None)
        tpm_limit = serializers.IntegerField(required=False, allow_null=True, default=None)
        expiry_days = serializers.IntegerField(default=90)

    @extend_schema(operation_id="key_requests_list_mine", responses=KeyRequestOutput(many=True))
    def get(self, request):
        return Response(KeyRequestOutput(selectors.my_key_requests(user=request.user)[:200], many=True).data)

    @extend_schema(operation_id="key_requests_create", request=Input, responses={201: KeyRequestOutput})
    def post(self, request):
        data = validated(self.Input, request.data)
        key_request = services.key_request_create(requester=request.user, data=services.KeyRequestInput(**data))
        return Response(KeyRequestOutput(key_request).data, status=201)


class KeyRequestCancelApi(APIView):
    @extend_schema(operation_id="key_requests_cancel", request=None, responses=KeyRequestOutput)
    def post(self, request, pk):
        key_request = get_object_or_404(selectors.key_requests_visible(user=request.user), pk=pk)
        return Response(KeyRequestOutput(services.key_request_cancel(request=key_request, actor=request.user)).data)


class ApprovalQueueApi(APIView):
    @extend_schema(operation_id="approvals_list", responses=KeyRequestOutput(many=True))
    def get(self, request):
        return Response(KeyRequestOutput(selectors.key_request_queue(user=request.user)[:200], many=True).data)


class ApprovalDecideApi(APIView):
    class Input(StrictSerializer):
        class Meta:
            ref_name = "DecisionInput"

        decision = serializers.ChoiceField(choices=["approve", "reject"])
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    @extend_schema(
        operation_id="approvals_decide",
        request=Input,
        responses=inline_serializer(
            "DecisionOutput",
            fields={
                "id": serializers.IntegerField(),
                "status": serializers.CharField(),
                "key_id": serializers.IntegerField(allow_null=True),
            },
        ),
    )
    def post(self, request, pk):
        data = validated(self.Input, request.data)
        key_request = get_object_or_404(selectors.key_request_queue(user=request.user), pk=pk)  # 404 outside scope
        if data["decision"] == "approve":
            key = services.key_request_approve(request=key_request, approver=request.user, note=data["note"])
        else:
            services.key_request_reject(request=key_request, approver=request.user, note=data["note"])
            key = None
        key_request.refresh_from_db()
        body = KeyRequestOutput(key_request).data
        body["key_id"] = key.pk if key else None
        return Response(body, status=200)
