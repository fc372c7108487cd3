"""Reads that pages show, always scoped through permissions."""

from django.db.models import Count, Prefetch, Q, QuerySet

from govsite.accounts import permissions
from govsite.accounts.models import Membership, SlackMessage, SsoGroupMapping, Team, User


def team_list(*, user: User) -> QuerySet[Team]:
    return (
        permissions.teams_visible_to(user)
        .annotate(
            member_count=Count("memberships", filter=Q(memberships__user__is_active=True), distinct=True),
            approver_count=Count(
                "memberships", filter=Q(memberships__role="approver", memberships__user__is_active=True), distinct=True
            ),
        )
        .order_by("name")
    )


def team_members(*, team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("-role", "user__email")


def people_list(*, user: User, query: str = "", status: str = "active") -> QuerySet[User]:
    qs = permissions.people_visible_to(user)
    if query:
        qs = qs.filter(Q(email__icontains=query) | Q(full_name__icontains=query))
    if status == "active":
        qs = qs.filter(is_active=True)
    elif status == "deactivated":
        qs = qs.filter(is_active=False)
    return qs.prefetch_related(
        Prefetch("memberships", queryset=Membership.objects.select_related("team")), "org_role_grants"
    ).order_by("email")


def person_memberships(*, person: User) -> QuerySet[Membership]:
    return person.memberships.select_related("team").order_by("team__name")


def sso_mapping_list() -> QuerySet[SsoGroupMapping]:
    return SsoGroupMapping.objects.select_related("team").order_by("group", "team__name", "org_role")


def my_teams(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def team_id_by_slug(*, slug: str) -> int | None:
    """For filters that name a team by slug (the audit log's): its id, or None when no team has it."""
    return Team.objects.filter(slug=slug).values_list("pk", flat=True).first()


def team_slugs(*, team_ids) -> dict[int, str]:
    return dict(Team.objects.filter(pk__in=set(team_ids)).values_list("pk", "slug"))


def team_slack_messages(*, team, limit: int = 10):
    """The team's latest Slack messages (for its admins: whether Slack hears them, and why not)."""
    return SlackMessage.objects.filter(team=team).order_by("-created_at")[:limit]
