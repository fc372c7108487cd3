"""Who may do what (CC6.1): org roles and team memberships at the time of the export."""

from __future__ import annotations

from collections.abc import Iterator

from audit.reports.common import CHUNK, iso
from govsite.accounts.models import Membership, OrgRoleGrant, TeamRole

ROLE_COLUMNS = ("person", "person_active", "role", "scope", "team", "source", "granted_at", "may")
_MAY = {
    "admin": "teams, roles, model policy, gateway settings; decide anything; open and sign off access reviews",
    "finance": "decide budget increases above team limits; see all cost",
    "auditor": "read everything incl. the audit log; export evidence; never decide or change",
    TeamRole.APPROVER: "decide the team's key requests and budget increases within its limit; review its keys",
    TeamRole.MEMBER: "request keys; see, reveal once, rotate and revoke their own keys",
}


def role_rows(team_ids: list[int] | None = None) -> Iterator[dict]:
    """Who holds which role at the time of the export (the role matrix applied to people)."""
    grants = OrgRoleGrant.objects.select_related("user").order_by("role", "user__email")
    for grant in grants.iterator(chunk_size=CHUNK):
        yield {
            "person": grant.user.email,
            "person_active": grant.user.is_active,
            "role": grant.role,
            "scope": "org",
            "team": None,
            "source": grant.source,
            "granted_at": iso(grant.created_at),
            "may": _MAY.get(grant.role, ""),
        }
    memberships = Membership.objects.select_related("user", "team").order_by("team__name", "role", "user__email")
    if team_ids:
        memberships = memberships.filter(team_id__in=team_ids)
    for m in memberships.iterator(chunk_size=CHUNK):
        yield {
            "person": m.user.email,
            "person_active": m.user.is_active,
            "role": m.role,
            "scope": "team",
            "team": m.team.name,
            "source": m.source,
            "granted_at": iso(m.created_at),
            "may": _MAY.get(m.role, ""),
        }


def role_count(team_ids: list[int] | None = None) -> int:
    memberships = Membership.objects.filter(team_id__in=team_ids) if team_ids else Membership.objects.all()
    return OrgRoleGrant.objects.count() + memberships.count()
