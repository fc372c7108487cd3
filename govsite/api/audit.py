"""The audit log over the API (admins and auditors), filtered like the audit page."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from audit import selectors
from audit.models import AuditEvent
from govsite.accounts import permissions
from govsite.accounts import selectors as account_selectors
from govsite.api.common import PAGE_PARAMETERS, READ_ERRORS, ApiView, errors, paginated, paginated_response, validated
from govsite.periods import period_validate


class AuditEventOutput(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField(help_text="The person's email; null for the system or a policy.")
    team = serializers.SerializerMethodField(help_text="The team's slug, if the event concerns one.")
    data = serializers.DictField(read_only=True)

    class Meta:
        ref_name = "AuditEvent"
        model = AuditEvent
        fields = [
            "seq",
            "created_at",
            "actor",
            "actor_label",
            "action",
            "target_type",
            "target_id",
            "target_label",
            "team",
            "data",
            "ip",
            "user_agent",
            "request_id",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields

    def get_actor(self, event) -> str | None:
        return event.actor_label if event.actor_id else None

    def get_team(self, event) -> str | None:
        return self.context.get("team_slugs", {}).get(event.team_id)


class AuditEventFilter(serializers.Serializer):
    actor = serializers.CharField(required=False, max_length=254, help_text="The actor's email contains this.")
    action = serializers.CharField(required=False, max_length=80, help_text="The action starts with this.")
    team = serializers.SlugField(required=False, help_text="A team's slug.")
    date_from = serializers.DateField(required=False, help_text="From this day (UTC), inclusive.")
    date_to = serializers.DateField(required=False, help_text="To this day (UTC), inclusive.")

    def validate_team(self, slug):
        team_id = account_selectors.team_id_by_slug(slug=slug)
        if team_id is None:
            raise serializers.ValidationError("No team has this slug.")
        return team_id

    def validate(self, data):
        period_validate(data.get("date_from"), data.get("date_to"), end_field="date_to")
        return data


def _team_slugs(events) -> dict:
    return {"team_slugs": account_selectors.team_slugs(team_ids=[event.team_id for event in events if event.team_id])}


class AuditEventListApi(ApiView):
    @extend_schema(
        operation_id="audit_events_list",
        summary="The audit log (admins and auditors)",
        description="Newest first. Each event carries its hash and the previous event's hash (the chain).",
        tags=["audit"],
        parameters=[AuditEventFilter, *PAGE_PARAMETERS],
        responses={200: paginated(AuditEventOutput), **errors(*READ_ERRORS)},
    )
    def get(self, request):
        permissions.require(
            permissions.can_view_audit_log(request.user), "Only admins and auditors can read the audit log."
        )
        filters = validated(AuditEventFilter, request.query_params)
        events = selectors.audit_event_list(
            user=request.user,
            actor=filters.get("actor", ""),
            action=filters.get("action", ""),
            team_id=filters.get("team"),
            date_from=filters.get("date_from"),
            date_to=filters.get("date_to"),
        )
        return paginated_response(self, events, AuditEventOutput, context=_team_slugs)
