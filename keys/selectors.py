"""Reads for key pages and the API, always scoped through permissions."""

from django.db.models import Count, Prefetch, Q, QuerySet

from audit.models import AuditEvent
from govsite.accounts import permissions
from govsite.accounts.models import User
from keys.models import (
    Approval,
    GatewayCommand,
    KeyRequest,
    KeyRollout,
    KeyRolloutMember,
    ModelPolicy,
    UnmanagedKey,
    VirtualKey,
)


def key_request_queue(*, user: User, team_slug: str = "") -> QuerySet[KeyRequest]:
    queue = KeyRequest.objects.filter(permissions.key_request_queue_scope(user))
    if team_slug:
        queue = queue.filter(team__slug=team_slug)
    return (
        queue.select_related("team", "requested_by", "owner", "data_classification")
        .prefetch_related(
            "requested_models", Prefetch("approvals", queryset=Approval.objects.select_related("approver"))
        )
        .order_by("created_at")
    )


def key_requests_awaiting_others(*, user: User) -> QuerySet[KeyRequest]:
    """Pending requests this person approved that wait for another approval (a restricted model needs an
    admin's too): listed for them as waiting, with nothing left for them to decide."""
    return (
        KeyRequest.objects.filter(permissions.key_request_scope(user))
        .filter(
            status=KeyRequest.Status.PENDING, approvals__approver=user, approvals__decision=Approval.Decision.APPROVE
        )
        .select_related("team", "requested_by", "owner")
        .order_by("created_at")
    )


def key_requests_visible(*, user: User) -> QuerySet[KeyRequest]:
    return (
        KeyRequest.objects.filter(permissions.key_request_scope(user))
        .select_related("team", "requested_by", "owner", "data_classification")
        .prefetch_related(
            "requested_models", Prefetch("approvals", queryset=Approval.objects.select_related("approver"))
        )
    )


def my_key_requests(*, user: User, status: str = "") -> QuerySet[KeyRequest]:
    requests = key_requests_visible(user=user).filter(Q(requested_by=user) | Q(owner=user))
    if status:
        requests = requests.filter(status=status)
    return requests.order_by("-created_at")


def keys_visible(*, user: User) -> QuerySet[VirtualKey]:
    return VirtualKey.objects.filter(permissions.key_scope(user)).select_related(
        "team", "owner", "request", "rotated_to"
    )


def my_keys(*, user: User) -> QuerySet[VirtualKey]:
    return keys_visible(user=user).filter(owner=user).order_by("-created_at")


def team_keys_for_approver(*, user: User) -> QuerySet[VirtualKey]:
    """Keys of the teams the user decides for (not their own)."""
    return (
        keys_visible(user=user)
        .filter(team__in=permissions.teams_user_decides_for(user))
        .exclude(owner=user)
        .order_by("team__name", "-created_at")
    )


KEY_LIST_SCOPES = {"mine": my_keys, "team": team_keys_for_approver, "all": keys_visible}


def key_list_scopes(*, user: User) -> list[str]:
    """The key lists a person has: their own; their teams' when they approve for one; all for org roles."""
    scopes = ["mine"]
    if permissions.decides_for_any_team(user):
        scopes.append("team")
    if permissions.sees_whole_org(user):
        scopes.append("all")
    return scopes


def key_list_teams(*, keys: QuerySet[VirtualKey]) -> list[tuple[str, str]]:
    """(slug, name) of the teams a key list spans, for its team filter (one query)."""
    return list(keys.order_by().values_list("team__slug", "team__name").distinct().order_by("team__name"))


def key_history(*, key: VirtualKey, limit: int = 50) -> QuerySet[AuditEvent]:
    """What happened to a key and its request (requested, approved by, revealed, rotated, budget changes):
    the audit events that target either, newest first."""
    targets = Q(target_type="keys.virtualkey", target_id=str(key.pk))
    if key.request_id:
        targets |= Q(target_type="keys.keyrequest", target_id=str(key.request_id))
    return AuditEvent.objects.filter(targets).select_related("actor").order_by("-seq")[:limit]


def key_list(*, user: User, scope: str = "mine", status: str = "", team_slug: str = "") -> QuerySet[VirtualKey]:
    """The API's key list: my keys, my teams' keys or every key I may see, newest first."""
    keys = KEY_LIST_SCOPES[scope](user=user)
    if status:
        keys = keys.filter(status=status)
    if team_slug:
        keys = keys.filter(team__slug=team_slug)
    return keys.order_by("-created_at", "-pk")


def existing_keys_by_owner(*, owner_ids: list[int]) -> dict[int, list[VirtualKey]]:
    """Live keys of the given people, for the approval queue's side panel (one query)."""
    result: dict[int, list[VirtualKey]] = {}
    live = VirtualKey.objects.filter(owner_id__in=owner_ids, status__in=VirtualKey.LIVE_STATUSES).select_related("team")
    for key in live:
        result.setdefault(key.owner_id, []).append(key)
    return result


def requestable_models() -> QuerySet[ModelPolicy]:
    return ModelPolicy.objects.filter(is_active=True).select_related("max_classification").order_by("name")


def model_policy_list() -> QuerySet[ModelPolicy]:
    return (
        ModelPolicy.objects.select_related("max_classification")
        .annotate(live_keys=Count("key_requests__keys", filter=Q(key_requests__keys__status="active"), distinct=True))
        .order_by("name")
    )


def gateway_command_list(*, status: str = "") -> QuerySet[GatewayCommand]:
    qs = GatewayCommand.objects.select_related("key", "team")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at")


def gateway_command_counts() -> dict[str, int]:
    return dict(GatewayCommand.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))


def unmanaged_key_list(*, status: str = UnmanagedKey.Status.OPEN) -> QuerySet[UnmanagedKey]:
    qs = UnmanagedKey.objects.all()
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-last_seen_at")


def pending_approvals_count(*, user: User) -> int:
    return KeyRequest.objects.filter(permissions.key_request_queue_scope(user)).count()


# --- rollouts ---------------------------------------------------------------------------------------------


def rollouts_visible(*, user: User) -> QuerySet[KeyRollout]:
    return (
        KeyRollout.objects.filter(permissions.rollout_scope(user))
        .select_related("team", "requested_by", "data_classification")
        .prefetch_related("requested_models")
        .annotate(people=Count("members", distinct=True))
        .order_by("-created_at", "-pk")
    )


def rollout_queue(*, user: User) -> QuerySet[KeyRollout]:
    """Pending rollouts the user may decide (never one they asked for or get a key from)."""
    return (
        KeyRollout.objects.filter(permissions.rollout_queue_scope(user))
        .select_related("team", "requested_by", "data_classification")
        .prefetch_related("requested_models")
        .annotate(people=Count("members", distinct=True))
        .distinct()
        .order_by("created_at")
    )


def rollout_members(*, rollout: KeyRollout) -> QuerySet[KeyRolloutMember]:
    """The rollout's people with their request and key (the key most recently made for that request)."""
    return rollout.members.select_related("user", "key_request").prefetch_related(
        Prefetch("key_request__keys", queryset=VirtualKey.objects.order_by("-created_at"))
    )


def rollout_keys(*, rollout: KeyRollout) -> QuerySet[VirtualKey]:
    return VirtualKey.objects.filter(request__rollout=rollout)


def rollout_key_counts(*, rollout: KeyRollout) -> dict:
    """How far the rollout's keys are: by status, and how many were revealed."""
    keys = rollout_keys(rollout=rollout)
    counts = dict(keys.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {
        "total": sum(counts.values()),
        "by_status": counts,
        "revealed": keys.filter(revealed_at__isnull=False).count(),
    }


def rollout_keys_waiting_to_be_revealed(*, user: User) -> QuerySet[VirtualKey]:
    """For the person's inbox ("Needs me"): keys a rollout made for them, active, that they have not
    revealed yet. Each item links to the key's page, where they reveal it once."""
    return (
        VirtualKey.objects.filter(
            owner=user,
            status=VirtualKey.Status.ACTIVE,
            request__rollout__isnull=False,
            revealed_at__isnull=True,
            secret_encrypted__isnull=False,
        )
        .select_related("team", "request__rollout")
        .order_by("created_at")
    )
