"""Adoption metrics per team and for the org, from the daily rollups (docs/ARCHITECTURE.md, decision 9).

Every figure is about a group, never a person, and is shown only when the group has at least
ADOPTION_MIN_GROUP people; otherwise it is HIDDEN. The definitions below are the ones the pages
print beside each figure (DEFINITIONS).

Weeks are ISO weeks (Monday to Sunday, UTC). A report covers the `weeks` complete ISO weeks before
the week of `as_of`, so its figures do not move while the current week fills up.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery

from adoption.models import TOOL_BITS, PersonWeek
from adoption.tables import HIDDEN
from budgets.models import ClientTool
from govsite.accounts.models import Membership, Team
from keys.models import VirtualKey

REPORT_WEEKS = 12
COHORT_OFFSETS = (1, 2, 4, 8)
REPEAT_DAYS = 14
REPEAT_MIN_DAYS = 3
TOOLS_DAYS = 28
UNUSED_DAYS = 30
ACTIVATION_BUCKETS = (("same day", 0, 0), ("1–7 days", 1, 7), ("8–30 days", 8, 30), ("over 30 days", 31, None))

DEFINITIONS = {
    "people": (
        "People in the team, for a week (or any period): everyone whose membership of the team began, or who "
        "first used one of the team's keys, on or before the period's last day, and who was not deactivated "
        "before its first day. So a person deactivated later still counts in the weeks before, and their "
        "activity counts in the week they were active; from the week after their deactivation they are out of "
        "the team's figures. Someone removed from a team drops out of its past weeks too (govsite keeps no "
        "membership history). A person in two teams counts in each, and once for the org."
    ),
    "active": (
        "Active in a week: at least one request through one of their personal keys of the team in that ISO week "
        "(Monday to Sunday, UTC). Service keys do not count: a bot is not a person using AI."
    ),
    "weekly_active": "Weekly-active rate: people active in the week ÷ people in the team that week.",
    "retention": (
        "Retention in week w: of the people active in week w−1 (and still in the team in week w), the share "
        "active in week w."
    ),
    "cohorts": (
        "Cohorts: people grouped by the ISO week of their first request in the team (in the org, for the org "
        "table); each cell is the share of the cohort, among those still in the team then, active 1, 2, 4 and 8 "
        "weeks later. A cell is empty until that week is over."
    ),
    "repeat": (
        f"Repeat use: the share of the people in the team who were active on at least {REPEAT_MIN_DAYS} "
        f"different days in the last {REPEAT_DAYS} days of the report."
    ),
    "tools": (
        f"Tools per person: over the last {TOOLS_DAYS} days of the report, the number of different client tools "
        "(Claude Code, Codex, Kimi, an OpenAI SDK, other) per active person; the mix is the share of active "
        "people who used each tool (a person using two tools counts in both)."
    ),
    "activation": (
        "Activation: for keys issued during the report's weeks, the days from the key being issued "
        "(provisioned at the gateway) to its first request. Zombie keys: live keys that were issued and never "
        f"used. Unused keys: live keys used before, but not in the last {UNUSED_DAYS} days of the report."
    ),
    "min_group": (
        "A figure is shown only when it is about at least {n} people; otherwise it reads “too few people to "
        "show without identifying someone”. There is no figure per person and no ranking."
    ),
}


def min_group() -> int:
    return int(getattr(settings, "ADOPTION_MIN_GROUP", 5))


# --- weeks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Week:
    start: date  # Monday

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)

    @property
    def label(self) -> str:
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    def plus(self, weeks: int) -> Week:
        return Week(self.start + timedelta(weeks=weeks))


def week_of(day: date) -> Week:
    return Week(day - timedelta(days=day.weekday()))


def report_weeks(as_of: date, count: int = REPORT_WEEKS) -> list[Week]:
    """The `count` complete ISO weeks before the week of `as_of`, oldest first."""
    current = week_of(as_of)
    return [current.plus(offset - count) for offset in range(count)]


# --- who is in a team ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    team_id: int | None
    user_id: int
    since: date  # joined the team, or the week they first used its keys, whichever came first
    first_use: date | None  # the Monday of the week of their first request through a personal key of the team
    gone_from: date | None  # deactivated on this day (None: active)

    def in_team(self, start: date, end: date) -> bool:
        """In the team during start..end: there by its end, not deactivated before its start."""
        return self.since <= end and (self.gone_from is None or self.gone_from >= start)


def _members(team_ids: list[int]) -> list[Member]:
    first_use = PersonWeek.objects.filter(team_id=OuterRef("team_id"), user_id=OuterRef("user_id")).order_by("week")
    rows = (
        Membership.objects.filter(team_id__in=team_ids)
        .annotate(first_use=Subquery(first_use.values("week")[:1]))
        .values_list("team_id", "user_id", "created_at", "first_use", "user__is_active", "user__deactivated_at")
        .order_by()
    )
    members = []
    for team_id, user_id, created_at, first_use_day, is_active, deactivated_at in rows:
        joined = created_at.date()
        since = min(joined, first_use_day) if first_use_day else joined
        gone_from = None
        if not is_active:  # deactivated with no date recorded: out of every period
            gone_from = deactivated_at.date() if deactivated_at else date.min
        members.append(Member(team_id, user_id, since, first_use_day, gone_from))
    return members


# --- the figures of one group ------------------------------------------------------------------------------------


def _share(part: int, whole: int, minimum: int):
    if whole < minimum:
        return HIDDEN
    return part / whole if whole else None


@dataclass
class WeekFigures:
    week: Week
    people: int
    active: int
    rate: object  # float, None or HIDDEN
    retention_base: int
    retained: int
    retention: object


@dataclass
class CohortRow:
    week: Week
    size: int
    shown: bool
    shares: dict[int, object]  # weeks later → share, None (not over yet) or HIDDEN


@dataclass
class GroupAdoption:
    """The adoption figures of one team (`team` set) or of the org (`team` None)."""

    team: Team | None
    people_now: int
    weeks: list[WeekFigures]
    cohorts: list[CohortRow]
    repeat_people: int
    repeat_users: int
    repeat_share: object
    tools_active: int
    tools_per_person: object
    tool_mix: dict[str, object]
    keys: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.team.name if self.team else "Whole org"

    @property
    def last_week(self) -> WeekFigures:
        return self.weeks[-1]

    @property
    def shown(self) -> bool:
        return self.people_now >= min_group()


def _group_figures(
    *,
    team: Team | None,
    members: dict[int, Member],
    activity: dict[Week, set[int]],
    repeat_days: dict[int, int],
    tools: dict[int, int],
    weeks: list[Week],
    minimum: int,
) -> GroupAdoption:
    """`members`: user → Member (for the org, one per person: the union of their teams); `activity`:
    week → the people with a request in it; `repeat_days`: user → distinct active days in the repeat
    window; `tools`: user → tool bits over the tools window."""
    last = weeks[-1]
    seen: dict[tuple[date, date], set[int]] = {}

    def people(start: date, end: date) -> set[int]:
        if (start, end) not in seen:
            seen[start, end] = {user for user, member in members.items() if member.in_team(start, end)}
        return seen[start, end]

    def active(week: Week) -> set[int]:
        return activity.get(week, set()) & people(week.start, week.end)

    figures = []
    for week in weeks:
        in_team = people(week.start, week.end)
        now = active(week)
        before = active(week.plus(-1)) & in_team
        kept = before & now
        figures.append(
            WeekFigures(
                week=week,
                people=len(in_team),
                active=len(now),
                rate=_share(len(now), len(in_team), minimum),
                retention_base=len(before),
                retained=len(kept),
                retention=_share(len(kept), len(before), minimum),
            )
        )

    cohorts = []
    for week in weeks:
        cohort = {
            user
            for user, member in members.items()
            if member.first_use is not None and week.start <= member.first_use <= week.end
        }
        shares: dict[int, object] = {}
        for offset in COHORT_OFFSETS:
            later = week.plus(offset)
            if later.start > last.start:
                shares[offset] = None
                continue
            still = cohort & people(later.start, later.end)
            shares[offset] = _share(len(still & active(later)), len(still), minimum)
        cohorts.append(CohortRow(week=week, size=len(cohort), shown=len(cohort) >= minimum, shares=shares))

    repeat_start = last.end - timedelta(days=REPEAT_DAYS - 1)
    repeat_base = people(repeat_start, last.end)
    repeaters = {user for user in repeat_base if repeat_days.get(user, 0) >= REPEAT_MIN_DAYS}

    tools_start = last.end - timedelta(days=TOOLS_DAYS - 1)
    tool_users = {user: bits for user, bits in tools.items() if user in people(tools_start, last.end) and bits}
    if len(tool_users) >= minimum:
        per_person = sum(bin(bits).count("1") for bits in tool_users.values()) / len(tool_users)
        mix = {
            label: sum(1 for bits in tool_users.values() if bits & TOOL_BITS[tool]) / len(tool_users)
            for tool, label in ClientTool.choices
        }
    else:
        per_person = HIDDEN
        mix = dict.fromkeys(ClientTool.labels, HIDDEN)

    return GroupAdoption(
        team=team,
        people_now=len(people(last.start, last.end)),
        weeks=figures,
        cohorts=cohorts,
        repeat_people=len(repeat_base),
        repeat_users=len(repeaters),
        repeat_share=_share(len(repeaters), len(repeat_base), minimum),
        tools_active=len(tool_users),
        tools_per_person=per_person,
        tool_mix=mix,
    )


# --- keys: activation, zombies, unused ---------------------------------------------------------------------------


def _key_figures(team_ids: list[int], weeks: list[Week]) -> dict[int | None, dict]:
    """Per team (and None for all of them): activation of the keys issued in the report's weeks, zombie
    keys and keys unused for UNUSED_DAYS at the report's end. One query.

    A key's last use is the latest known (KeyUse): for a report of past weeks, a key used since then
    counts as used."""
    first, last = weeks[0].start, weeks[-1].end
    keys = (
        VirtualKey.objects.filter(team_id__in=team_ids, provisioned_at__isnull=False)
        .values_list("team_id", "provisioned_at", "revoked_at", "expires_at", "use__first_day", "use__last_day")
        .order_by()
    )
    groups: dict[int | None, dict] = {}
    unused_since = last - timedelta(days=UNUSED_DAYS - 1)
    for team_id, provisioned_at, revoked_at, expires_at, first_day, last_day in keys:
        issued = provisioned_at.date()
        if issued > last:
            continue
        if first_day is not None and first_day > last:
            first_day = last_day = None  # first used after the report's end
        live = (revoked_at is None or revoked_at.date() > last) and expires_at.date() > last
        for key in (team_id, None):
            figures = groups.setdefault(key, _no_keys())
            if first <= issued:
                figures["issued"] += 1
                if first_day is None:
                    figures["never"] += 1
                else:
                    figures["delays"].append(max(0, (first_day - issued).days))
            if live:
                figures["live"] += 1
                if first_day is None:
                    figures["zombie"] += 1
                elif last_day < unused_since:
                    figures["unused"] += 1
    return groups


def _no_keys() -> dict:
    return {"issued": 0, "delays": [], "never": 0, "zombie": 0, "unused": 0, "live": 0}


def _activation(figures: dict | None, shown: bool, minimum: int) -> dict:
    figures = figures or _no_keys()
    enough = shown and figures["issued"] >= minimum
    delays = figures["delays"]
    buckets = {
        label: (sum(1 for d in delays if low <= d and (high is None or d <= high)) if enough else HIDDEN)
        for label, low, high in ACTIVATION_BUCKETS
    }
    return {
        "issued": figures["issued"] if shown else HIDDEN,
        "median_days": (statistics.median(delays) if delays else None) if enough else HIDDEN,
        "buckets": buckets,
        "never": figures["never"] if enough else HIDDEN,
        "live": figures["live"] if shown else HIDDEN,
        "zombie": figures["zombie"] if shown else HIDDEN,
        "unused": figures["unused"] if shown else HIDDEN,
    }


# --- the report --------------------------------------------------------------------------------------------------


@dataclass
class AdoptionReport:
    weeks: list[Week]
    as_of: date
    min_group: int
    teams: list[GroupAdoption]
    org: GroupAdoption | None


def adoption_report(*, teams: list[Team], as_of: date, whole_org: bool, weeks: int = REPORT_WEEKS) -> AdoptionReport:
    """Adoption of each team (and of the org when `whole_org`): at most five queries, whatever the size."""
    minimum = min_group()
    report_weeks_ = report_weeks(as_of, weeks)
    last = report_weeks_[-1]
    team_ids = [team.pk for team in teams]
    members = _members(team_ids)

    # Who was active in which ISO week, on which days and with which tools, per team (one week before
    # the report too, for retention): one row per person, team and week.
    window_start = report_weeks_[0].start - timedelta(weeks=1)
    repeat_start = last.end - timedelta(days=REPEAT_DAYS - 1)
    tools_start = last.end - timedelta(days=TOOLS_DAYS - 1)
    activity: dict[int, dict[Week, set[int]]] = defaultdict(lambda: defaultdict(set))
    org_activity: dict[Week, set[int]] = defaultdict(set)
    repeat_days: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    org_days: dict[tuple[int, Week], int] = defaultdict(int)  # a person's weekdays across all their teams
    tools: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    org_tools: dict[int, int] = defaultdict(int)
    rows = (
        PersonWeek.objects.filter(team_id__in=team_ids, week__gte=window_start, week__lte=last.start)
        .values_list("team_id", "user_id", "week", "days", "tools")
        .order_by()
    )
    for team_id, user_id, monday, days, bits in rows:
        week = Week(monday)
        activity[team_id][week].add(user_id)
        org_activity[week].add(user_id)
        # the repeat and tools windows are the report's last whole weeks
        if monday >= repeat_start:
            repeat_days[team_id][user_id] += days.bit_count()
            org_days[user_id, week] |= days
        if monday >= tools_start:
            tools[team_id][user_id] |= bits
            org_tools[user_id] |= bits
    org_repeat_days: dict[int, int] = defaultdict(int)
    for (user_id, _), days in org_days.items():
        org_repeat_days[user_id] += days.bit_count()

    keys = _key_figures(team_ids, report_weeks_)

    by_team: dict[int, dict[int, Member]] = defaultdict(dict)
    for member in members:
        by_team[member.team_id][member.user_id] = member
    results = []
    for team in teams:
        figures = _group_figures(
            team=team,
            members=by_team.get(team.pk, {}),
            activity=activity.get(team.pk, {}),
            repeat_days=repeat_days.get(team.pk, {}),
            tools=tools.get(team.pk, {}),
            weeks=report_weeks_,
            minimum=minimum,
        )
        figures.keys = _activation(keys.get(team.pk), figures.shown, minimum)
        results.append(figures)

    org = None
    if whole_org:
        org = _group_figures(
            team=None,
            members=_org_members(members),
            activity=org_activity,
            repeat_days=org_repeat_days,
            tools=org_tools,
            weeks=report_weeks_,
            minimum=minimum,
        )
        org.keys = _activation(keys.get(None), org.shown, minimum)
    return AdoptionReport(weeks=report_weeks_, as_of=as_of, min_group=minimum, teams=results, org=org)


def _org_members(members: list[Member]) -> dict[int, Member]:
    """One Member per person for the org: in it from their earliest team, first use in any team."""
    merged: dict[int, Member] = {}
    for member in members:
        seen = merged.get(member.user_id)
        if seen is None:
            merged[member.user_id] = Member(None, member.user_id, member.since, member.first_use, member.gone_from)
            continue
        uses = [day for day in (seen.first_use, member.first_use) if day is not None]
        merged[member.user_id] = Member(
            None, member.user_id, min(seen.since, member.since), min(uses) if uses else None, seen.gone_from
        )
    return merged
