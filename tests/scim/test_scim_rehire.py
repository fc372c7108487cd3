"""Delete means delete to the identity provider, and a re-hire is the same person again.

DELETE /Users/{id}: the id answers 404 and the person leaves every query and group; in govsite they are
deactivated (the leaver sweep revokes their keys) and nothing about them is erased. A later POST of the
same userName provisions them again under a new SCIM id, with their earlier keys and events kept, and the
leaver report still shows the delete.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from govsite.accounts.models import OrgRole, TeamRole, User
from keys import jobs as key_jobs
from keys import services as key_services
from keys.models import VirtualKey
from tests.factories import SsoGroupMappingFactory, make_user
from tests.keys.conftest import request_input
from tests.scim.conftest import group_body, user_body
from tests.scim.helpers import ACTOR, assert_scim_error, memberships
from tests.scim.test_scim_users import leaver_report_rows

pytestmark = pytest.mark.django_db(transaction=True)


def test_delete_then_reprovision(scim, live_gateway, team_a, member_a_user, approver_a_user, open_model):
    SsoGroupMappingFactory(group="Engineering A", team=team_a, team_role=TeamRole.MEMBER)
    request = key_services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model]))
    key = key_services.key_request_approve(request=request, approver=approver_a_user)
    group = scim.post("Groups", group_body("Engineering A", member_a_user.pk))
    assert group.status == 201, group
    first_id = str(member_a_user.pk)
    events_before = set(AuditEvent.objects.filter(target_id=first_id).values_list("seq", flat=True))

    # DELETE: gone to the identity provider ...
    assert scim.delete(f"Users/{first_id}").status == 204
    assert_scim_error(scim.get(f"Users/{first_id}"), 404)
    assert_scim_error(scim.patch(f"Users/{first_id}", {"schemas": [], "Operations": []}), 404)
    assert scim.get("Users", filter=f'userName eq "{member_a_user.email}"').body["totalResults"] == 0
    assert first_id not in {u["id"] for u in scim.get("Users").body["Resources"]}
    assert "members" not in scim.get(f"Groups/{group.body['id']}").body
    left = AuditEvent.objects.get(action="scim_group.updated", target_id=group.body["id"])
    assert left.data["changes"] == {"members_removed": [member_a_user.email]}
    # ... and in govsite a leaver: deactivated, their key revoked by the sweep, nothing erased.
    member_a_user.refresh_from_db()
    assert not member_a_user.is_active
    assert memberships(member_a_user) == {"team-a": (TeamRole.MEMBER, "manual")}  # set in govsite: kept
    assert key_jobs.revoke_leaver_keys() == 1
    key.refresh_from_db()
    assert key.status == VirtualKey.Status.REVOKED

    auditor = make_user(email="auditor@example.com", org_roles=[OrgRole.AUDITOR])
    (row,) = leaver_report_rows(auditor, member_a_user)
    deleted = AuditEvent.objects.get(action="user.scim_deleted", target_id=first_id)
    assert (row["deactivated_by"], row["reason"]) == (ACTOR, "deleted through SCIM (DELETE /Users)")
    assert row["scim_deleted_at"] is not None and row["scim_deleted_at"][:19] == deleted.created_at.isoformat()[:19]
    assert row["check_key_removed_in_time"] == "PASS"

    # The same userName again: the same person, a new provisioning and a new SCIM id.
    again = scim.post(
        "Users", user_body(member_a_user.email.upper(), name={"givenName": "Back", "familyName": "Again"})
    )
    assert again.status == 201, again
    second_id = f"{member_a_user.pk}-2"
    assert again.body["id"] == second_id and again.headers["Location"].endswith(f"/Users/{second_id}")
    assert again.body["active"] is True and again.body["name"] == {"givenName": "Back", "familyName": "Again"}
    assert User.objects.filter(email__iexact=member_a_user.email).count() == 1
    assert_scim_error(scim.get(f"Users/{first_id}"), 404)  # an ended provisioning's id stays gone
    assert scim.get(f"Users/{second_id}").status == 200
    assert scim.get("Users", filter=f'userName eq "{member_a_user.email}"').body["Resources"][0]["id"] == second_id
    rehired = [e.action for e in AuditEvent.objects.filter(target_id=first_id, seq__gt=deleted.seq).order_by("seq")]
    assert rehired[:1] == ["user.scim_reprovisioned"] and "user.reactivated" in rehired and "user.updated" in rehired
    assert AuditEvent.objects.get(action="user.scim_reprovisioned").actor_label == ACTOR

    # Their history stays: the earlier key (revoked), every earlier event, the leaver report's row.
    key.refresh_from_db()
    assert key.owner_id == member_a_user.pk and key.status == VirtualKey.Status.REVOKED
    assert events_before <= set(AuditEvent.objects.filter(target_id=first_id).values_list("seq", flat=True))
    (row,) = leaver_report_rows(auditor, member_a_user)
    assert row["person_active_now"] is True and row["scim_deleted_at"] is not None

    # And once more: a third provisioning, a third id.
    assert scim.delete(f"Users/{second_id}").status == 204
    assert scim.post("Users", user_body(member_a_user.email)).body["id"] == f"{member_a_user.pk}-3"
    assert reverse("leaver_report")


def test_a_deleted_person_cannot_be_made_a_member_or_changed(scim, member_b_user):
    assert scim.delete(f"Users/{member_b_user.pk}").status == 204
    assert_scim_error(scim.post("Groups", group_body("Engineering B", member_b_user.pk)), 400, "invalidValue")
    assert_scim_error(scim.put(f"Users/{member_b_user.pk}", user_body(member_b_user.email)), 404)
