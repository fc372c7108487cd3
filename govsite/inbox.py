""" "Needs me": one page and one count of everything waiting for a person, composed from each app's own queue.

Each kind of item is one `Provider`: who has it (`applies`, a role question from permissions/), the queue itself
(`queue`, the owning app's scoped selector — the same queryset its own page lists, so the inbox's count is the
queue's count), how one row reads (`item`) and where the whole queue is decided (`link`). A kind that only
informs (requests the person approved that wait for someone else) sets `counts=False`: it is listed, with no
decision on it, and adds nothing to the navigation's count. To add a kind, append a Provider to `PROVIDERS`
(or call `register`) with a selector from the app that owns the data; the page and the count follow.

The counts of every section (and the navigation's) come from one query, whatever the number of kinds; a section that
holds anything costs one more query for its first rows, whatever the size of its queue.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import EmptyResultSet
from django.core.signals import setting_changed
from django.db import connections, router
from django.db.models import QuerySet
from django.db.models.functions import Now
from django.urls import reverse

from audit import selectors as audit_selectors
from budgets import quarantine
from budgets import selectors as budget_selectors
from budgets.models import Notice
from govsite.accounts import permissions
from govsite.accounts.models import User
from keys import selectors as key_selectors

EXPIRY_WINDOW = timedelta(days=14)


@dataclass(frozen=True)
class InboxItem:
    title: str
    link: str
    detail: str = ""
    when: datetime | None = None


@dataclass(frozen=True)
class Provider:
    kind: str
    heading: str
    applies: Callable[[User], bool]
    queue: Callable[[User], QuerySet]
    item: Callable[[object], InboxItem]
    link: Callable[[], str]
    counts: bool = True  # False: listed for information, nothing to decide, not in the navigation's count
    action: str = "Decide"


@dataclass
class InboxSection:
    provider: Provider
    count: int
    items: list[InboxItem] = field(default_factory=list)

    @property
    def more(self) -> int:
        return self.count - len(self.items)


# --- the kinds --------------------------------------------------------------------------------------------


def _key_request(kr) -> InboxItem:
    what = kr.service_name or kr.purpose
    return InboxItem(
        title=f"#{kr.pk} {kr.requested_by.display_name} · {kr.team.name}",
        detail=what[:80],
        link=reverse("key_request_detail", args=[kr.pk]),
        when=kr.created_at,
    )


def _increase(increase) -> InboxItem:
    subject = f"key {increase.key.display_name}" if increase.key_id else increase.budget.scope_label
    return InboxItem(
        title=f"${increase.amount:,.2f} more on {subject}",
        detail=f"asked by {increase.requested_by.display_name}",
        link=reverse("budget_increase_detail", args=[increase.pk]),
        when=increase.created_at,
    )


def _review_item(item) -> InboxItem:
    return InboxItem(
        title=f"{item.key_alias} · {item.owner_email}",
        detail=f"{item.review.name}, due {item.review.due_at:%Y-%m-%d}",
        link=reverse("access_review_decide", args=[item.pk]),
        when=item.review.due_at,
    )


def _expiring(key) -> InboxItem:
    return InboxItem(
        title=key.display_name,
        detail=f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC",
        link=reverse("key_detail", args=[key.pk]),
        when=key.expires_at,
    )


def _rollout_key(key) -> InboxItem:
    return InboxItem(
        title=key.display_name,
        detail=f"made for you by a rollout to {key.team.name}; reveal it once on its page",
        link=reverse("key_detail", args=[key.pk]),
        when=key.created_at,
    )


def _notice(notice) -> InboxItem:
    return InboxItem(title=notice.title, link=notice.link or reverse("notice_list"), when=notice.created_at)


def _command(command) -> InboxItem:
    target = command.key.alias if command.key_id else (command.team.name if command.team_id else "")
    return InboxItem(
        title=f"{command.get_kind_display()} {target}".strip(),
        detail=(command.last_error or "")[:120],
        link=reverse("gateway_commands") + "?status=failed",
        when=command.updated_at,
    )


def _quarantined(row) -> InboxItem:
    return InboxItem(
        title=row.request_id or f"row {row.pk}",
        detail=row.reason[:120],
        link=reverse("quarantine_detail", args=[row.pk]),
        when=row.received_at,
    )


def _unmanaged(unmanaged) -> InboxItem:
    return InboxItem(
        title=str(unmanaged),
        detail=f"${unmanaged.spend:,.2f} spent at the gateway",
        link=reverse("unmanaged_keys"),
        when=unmanaged.last_seen_at,
    )


def expiring_keys(user: User) -> QuerySet:
    """The person's own live keys that expire within 14 days (of the database's clock, so that the query's
    text does not change with the time: see _counts)."""
    return key_selectors.my_keys(user=user).filter(
        status="active", expires_at__lte=Now() + EXPIRY_WINDOW, grace_until__isnull=True
    )


PROVIDERS: list[Provider] = [
    Provider(
        "key_requests",
        "Key requests to decide",
        permissions.has_key_approval_queue,
        # An item shows who, which team and what for: the queue page's models and approvals are not read here.
        lambda user: key_selectors.key_request_queue(user=user).prefetch_related(None),
        _key_request,
        lambda: reverse("approval_queue"),
    ),
    Provider(
        "key_requests_waiting",
        "Approved by you, waiting for another approver",
        permissions.has_key_approval_queue,
        lambda user: key_selectors.key_requests_awaiting_others(user=user),
        _key_request,
        lambda: reverse("approval_queue"),
        counts=False,
        action="See",
    ),
    Provider(
        "budget_increases",
        "Budget increases to decide",
        permissions.can_decide_budget_increases,
        lambda user: budget_selectors.increase_queue(user=user),
        _increase,
        lambda: reverse("budget_increase_queue"),
    ),
    Provider(
        "access_reviews",
        "Keys to review",
        permissions.can_review_access,
        lambda user: audit_selectors.access_review_queue(user=user),
        _review_item,
        lambda: reverse("access_review_queue"),
    ),
    Provider(
        "rollout_keys",
        "Keys a rollout made for me, to reveal",
        permissions.may_change_state,
        lambda user: key_selectors.rollout_keys_waiting_to_be_revealed(user=user),
        _rollout_key,
        lambda: reverse("key_list"),
        action="Reveal",
    ),
    Provider(
        "expiring_keys",
        "My keys expiring within 14 days",
        permissions.may_change_state,
        expiring_keys,
        _expiring,
        lambda: reverse("key_list"),
        action="Rotate or ask again",
    ),
    Provider(
        "budget_alerts",
        "Budget alerts and anomalies for my teams",
        permissions.may_change_state,
        lambda user: budget_selectors.alert_notices_unread(user=user),
        _notice,
        lambda: reverse("notice_list"),
        action="Read",
    ),
    Provider(
        "gateway_commands",
        "Failed gateway commands",
        permissions.can_manage_gateway,
        lambda user: key_selectors.gateway_command_list(status="failed"),
        _command,
        lambda: reverse("gateway_commands") + "?status=failed",
        action="Retry",
    ),
    Provider(
        "quarantined_rows",
        "Quarantined spend rows",
        permissions.can_manage_ingest,
        lambda user: quarantine.quarantine_list(user=user),
        _quarantined,
        lambda: reverse("quarantine_list"),
        action="Retry or discard",
    ),
    Provider(
        "unmanaged_keys",
        "Unmanaged keys at the gateway",
        permissions.can_manage_gateway,
        lambda user: key_selectors.unmanaged_key_list(),
        _unmanaged,
        lambda: reverse("unmanaged_keys"),
        action="Adopt or delete",
    ),
]


def register(provider: Provider) -> None:
    """Add a kind of item (another app's queue) to every person's inbox."""
    if any(existing.kind == provider.kind for existing in PROVIDERS):
        raise ValueError(f"inbox kind {provider.kind!r} is registered twice")
    PROVIDERS.append(provider)


@dataclass
class Inbox:
    """A person's sections, and the navigation's two counts read with them (the inbox and home pages hand
    these to the navigation instead of counting again)."""

    sections: list[InboxSection]
    waiting: int  # what the navigation counts as waiting for the person to act on
    unread: int  # their unread notices

    @property
    def navigation_counts(self) -> tuple[int, int]:
        return self.waiting, self.unread


def inbox(*, user: User, limit: int = 5) -> Inbox:
    """The sections that apply to this person, each with its count and first rows (empty ones included): the
    counts (and the unread notices) in one query, then the first rows of each section that has any."""
    providers = [provider for provider in PROVIDERS if provider.applies(user)]
    *counts, unread = _counts(user, providers)
    sections = [
        InboxSection(
            provider=provider,
            count=count,
            items=[provider.item(row) for row in provider.queue(user)[:limit]] if count else [],
        )
        for provider, count in zip(providers, counts, strict=True)
    ]
    acts = permissions.may_change_state(user)
    waiting = sum(section.count for section in sections if section.provider.counts) if acts else 0
    return Inbox(sections, waiting, unread)


# The navigation's counts per person, as compiled SQL: building and compiling the queues' querysets costs
# several times what running the query does, on every page. A queue's SQL depends only on who asks (their org
# roles and team roles, which the permission checks read on every request anyway), the settings and the
# database it reads: never on the time (the queues compare with the database's clock) nor on other rows, which
# stay in the SQL as subqueries. So the SQL is kept per process under exactly those inputs, a bounded number of
# people, and dropped when a setting changes.
_COUNT_SQL: OrderedDict[tuple, tuple[str, list]] = OrderedDict()
_COUNT_SQL_SIZE = 2000
_count_sql_lock = threading.Lock()


def _forget_count_sql(**_kwargs) -> None:
    with _count_sql_lock:
        _COUNT_SQL.clear()


setting_changed.connect(_forget_count_sql)


def _count_sql(user: User, providers: list[Provider]) -> tuple[str, list]:
    """(SQL, parameters) of this person's count of each provider's queue, in order, and of their
    unread notices last."""
    parts, params = [], []
    for queryset in [*(provider.queue(user) for provider in providers), budget_selectors.unread_notices(user=user)]:
        try:
            sql, sql_params = queryset.order_by().values("pk").query.sql_with_params()
        except EmptyResultSet:  # a queue that can hold nothing for this person (none(), an empty IN)
            parts.append("0")
            continue
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS counted_{len(parts)})")  # noqa: S608
        params.extend(sql_params)
    # Each part is SQL Django compiled from a queryset, its values bound as parameters: nothing is spliced in.
    return "SELECT " + ", ".join(parts), params  # noqa: S608


def _counts(user: User, providers: list[Provider]) -> list[int]:
    """The count of each provider's queue for this person, then of their unread notices: one query."""
    alias = router.db_for_read(Notice)  # a replica inside replica_reads(), else the primary
    key = (
        alias,
        user.pk,
        user.org_roles,
        tuple(sorted(permissions.team_roles(user).items())),
        tuple(id(provider) for provider in providers),
    )
    with _count_sql_lock:
        compiled = _COUNT_SQL.get(key)
        if compiled is not None:
            _COUNT_SQL.move_to_end(key)
    if compiled is None:
        compiled = _count_sql(user, providers)
        with _count_sql_lock:
            _COUNT_SQL[key] = compiled
            while len(_COUNT_SQL) > _COUNT_SQL_SIZE:
                _COUNT_SQL.popitem(last=False)
    sql, params = compiled
    with connections[alias].cursor() as cursor:  # the database the queues read (a replica, when routed)
        cursor.execute(sql, params)
        return [int(count or 0) for count in cursor.fetchone()]


def navigation_counts(*, user: User, applies: dict[str, bool] | None = None) -> tuple[int, int]:
    """What the navigation shows on every page, in one query: everything waiting for this person to act on
    (each queue's own queryset counted as a subquery; `applies` may carry role answers already known) and
    their unread notices."""
    if not permissions._active(user):
        return 0, 0
    if not permissions.may_change_state(user):
        return 0, budget_selectors.unread_notices(user=user).count()
    known = applies or {}
    providers = [p for p in PROVIDERS if p.counts and (known[p.kind] if p.kind in known else p.applies(user))]
    *waiting, unread = _counts(user, providers)
    return sum(waiting), unread
