"""What the SCIM tests share: reading a person's grants, the SCIM error body, a snapshot of what a write
could touch.
"""

from __future__ import annotations

from audit.models import AuditEvent
from govsite.accounts.models import Membership, OrgRoleGrant, ScimGroup, User
from tests.scim.conftest import ERROR_SCHEMA, user_body

ACTOR = "scim:okta"


def memberships(user: User) -> dict[str, tuple[str, str]]:
    return {m.team.slug: (m.role, m.source) for m in Membership.objects.filter(user=user).select_related("team")}


def org_roles(user: User) -> dict[str, str]:
    return dict(OrgRoleGrant.objects.filter(user=user).values_list("role", "source"))


def assert_scim_error(response, status: int, scim_type: str = ""):
    assert response.status == status, response
    assert response.body["schemas"] == [ERROR_SCHEMA]
    assert response.body["status"] == str(status)
    assert response.body["detail"]
    if scim_type:
        assert response.body.get("scimType") == scim_type, response


def snapshot() -> tuple[int, ...]:
    """Everything a SCIM write could touch: nothing of it may change on a refused or malformed call."""
    return (
        User.objects.count(),
        User.objects.filter(is_active=False).count(),
        ScimGroup.objects.count(),
        Membership.objects.count(),
        OrgRoleGrant.objects.count(),
        AuditEvent.objects.count(),
        sum(len(g.members.all()) for g in ScimGroup.objects.prefetch_related("members")),
        hash(tuple(User.objects.order_by("pk").values_list("email", "full_name", "scim_external_id"))),
    )


def create_user(scim, email: str, **extra) -> User:
    response = scim.post("Users", user_body(email, **extra))
    assert response.status == 201, response
    return User.objects.get(pk=int(response.body["id"]))
