"""SCIM Groups: a pushed group gives its members what its name maps to, and takes it back when they leave it.

Calls go through the real URL routing and views with a bearer token (no session, CSRF checks on);
every write goes through the accounts services and is audited as "scim:<token name>".
"""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from govsite.accounts.models import OrgRole, ScimGroup, Source, TeamRole
from tests.factories import MembershipFactory
from tests.scim.conftest import group_body, patch_body
from tests.scim.helpers import ACTOR, assert_scim_error, create_user, memberships, org_roles, snapshot

pytestmark = pytest.mark.django_db


# --- groups ------------------------------------------------------------------------------------------------


def test_a_pushed_group_gives_its_members_what_its_name_maps_to(scim, mappings, member_b_user):
    ann = create_user(scim, "ann@example.com")
    bob = create_user(scim, "bob@example.com")

    response = scim.post("Groups", group_body("Engineering A", ann.pk, bob.pk, externalId="grp-1"))

    assert response.status == 201, response
    group = ScimGroup.objects.get(display_name="Engineering A")
    assert response.body["id"] == str(group.pk)
    assert response.headers["Location"].endswith(f"/scim/v2/Groups/{group.pk}")
    assert sorted(m["value"] for m in response.body["members"]) == sorted([str(ann.pk), str(bob.pk)])
    assert memberships(ann) == memberships(bob) == {"team-a": (TeamRole.MEMBER, Source.SCIM)}
    created = AuditEvent.objects.get(action="scim_group.created")
    assert created.actor_label == ACTOR
    assert created.data["members"] == ["ann@example.com", "bob@example.com"]
    added = AuditEvent.objects.filter(action="membership.added", data__source="scim")
    assert {e.actor_label for e in added} == {ACTOR} and added.count() == 2
    # The user resource lists its groups.
    assert scim.get(f"Users/{ann.pk}").body["groups"][0]["display"] == "Engineering A"


def test_an_org_role_group_and_the_higher_of_two_team_roles(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    scim.post("Groups", group_body("Engineering A", ann.pk))
    scim.post("Groups", group_body("Engineering A leads", ann.pk))
    scim.post("Groups", group_body("Finance", ann.pk))
    assert memberships(ann) == {"team-a": (TeamRole.APPROVER, Source.SCIM)}
    assert org_roles(ann) == {OrgRole.FINANCE: Source.SCIM}

    leads = ScimGroup.objects.get(display_name="Engineering A leads")
    response = scim.patch(f"Groups/{leads.pk}", patch_body({"op": "remove", "path": f'members[value eq "{ann.pk}"]'}))
    assert response.status == 200, response
    assert memberships(ann) == {"team-a": (TeamRole.MEMBER, Source.SCIM)}
    changed = AuditEvent.objects.filter(action="membership.role_changed").latest("seq")
    assert (changed.actor_label, changed.data["before"], changed.data["after"]) == (ACTOR, "approver", "member")


def test_patch_members_add_and_remove_entra_style(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    bob = create_user(scim, "bob@example.com")
    group_id = scim.post("Groups", group_body("Engineering B")).body["id"]

    response = scim.patch(
        f"Groups/{group_id}",
        patch_body({"op": "Add", "path": "members", "value": [{"value": str(ann.pk)}, {"value": str(bob.pk)}]}),
    )
    assert response.status == 200, response
    assert memberships(ann) == memberships(bob) == {"team-b": (TeamRole.MEMBER, Source.SCIM)}

    scim.patch(f"Groups/{group_id}", patch_body({"op": "Remove", "path": "members", "value": [{"value": str(bob.pk)}]}))
    assert memberships(bob) == {}
    assert memberships(ann) == {"team-b": (TeamRole.MEMBER, Source.SCIM)}
    removed = AuditEvent.objects.get(action="membership.removed")
    assert removed.actor_label == ACTOR
    assert removed.data["reason"] == "no longer in a SCIM group that grants it"
    updated = AuditEvent.objects.filter(action="scim_group.updated").latest("seq")
    assert updated.data["changes"] == {"members_removed": ["bob@example.com"]}


def test_scim_groups_leave_manual_and_sso_grants_alone(scim, mappings, team_a, team_b):
    ann = create_user(scim, "ann@example.com")
    MembershipFactory(user=ann, team=team_a, role=TeamRole.APPROVER, source=Source.MANUAL)
    MembershipFactory(user=ann, team=team_b, role=TeamRole.MEMBER, source=Source.SSO)

    group_a = scim.post("Groups", group_body("Engineering A", ann.pk)).body["id"]
    group_b = scim.post("Groups", group_body("Engineering B", ann.pk)).body["id"]
    assert memberships(ann) == {"team-a": (TeamRole.APPROVER, Source.MANUAL), "team-b": (TeamRole.MEMBER, Source.SSO)}

    assert scim.delete(f"Groups/{group_a}").status == 204
    assert scim.delete(f"Groups/{group_b}").status == 204
    assert memberships(ann) == {"team-a": (TeamRole.APPROVER, Source.MANUAL), "team-b": (TeamRole.MEMBER, Source.SSO)}


def test_put_replaces_members_and_a_rename_remaps_everyone(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    bob = create_user(scim, "bob@example.com")
    group_id = scim.post("Groups", group_body("Engineering A", ann.pk)).body["id"]

    response = scim.put(f"Groups/{group_id}", group_body("Engineering B", ann.pk, bob.pk))

    assert response.status == 200, response
    assert response.body["displayName"] == "Engineering B"
    assert memberships(ann) == memberships(bob) == {"team-b": (TeamRole.MEMBER, Source.SCIM)}
    updated = AuditEvent.objects.filter(action="scim_group.updated").latest("seq")
    assert updated.data["changes"] == {
        "display_name": {"before": "Engineering A", "after": "Engineering B"},
        "members_added": ["bob@example.com"],
    }

    # Okta renames with a replace without a path.
    scim.patch(f"Groups/{group_id}", patch_body({"op": "replace", "value": {"id": group_id, "displayName": "Finance"}}))
    assert memberships(ann) == {}
    assert org_roles(ann) == org_roles(bob) == {OrgRole.FINANCE: Source.SCIM}


def test_delete_a_group_removes_what_it_granted(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    group_id = scim.post("Groups", group_body("Finance", ann.pk)).body["id"]
    assert org_roles(ann) == {OrgRole.FINANCE: Source.SCIM}

    assert scim.delete(f"Groups/{group_id}").status == 204

    assert not ScimGroup.objects.exists()
    assert org_roles(ann) == {}
    assert AuditEvent.objects.get(action="scim_group.deleted").data == {
        "display_name": "Finance",
        "members": ["ann@example.com"],
    }
    revoked = AuditEvent.objects.get(action="user.org_role_revoked")
    assert revoked.actor_label == ACTOR
    assert_scim_error(scim.get(f"Groups/{group_id}"), 404)


def test_a_deactivated_persons_groups_grant_nothing_until_they_are_reactivated(scim, mappings):
    ann = create_user(scim, "ann@example.com", active=False)
    scim.post("Groups", group_body("Engineering A", ann.pk))
    assert memberships(ann) == {}

    scim.patch(f"Users/{ann.pk}", patch_body({"op": "replace", "path": "active", "value": True}))

    assert memberships(ann) == {"team-a": (TeamRole.MEMBER, Source.SCIM)}


def test_groups_are_filtered_by_display_name_and_member(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    group_id = scim.post("Groups", group_body("Engineering A", ann.pk)).body["id"]
    scim.post("Groups", group_body("Engineering B"))

    by_name = scim.get("Groups", filter='displayName eq "Engineering A"')
    assert [g["id"] for g in by_name.body["Resources"]] == [group_id]
    # Entra ID checks a membership like this.
    member_check = scim.get(
        "Groups", filter=f'id eq "{group_id}" and members[value eq "{ann.pk}"]', excludedAttributes="members"
    )
    assert member_check.body["totalResults"] == 1
    assert "members" not in member_check.body["Resources"][0]
    assert scim.get("Groups", filter=f'members[value eq "{ann.pk + 1000}"]').body["totalResults"] == 0
    assert scim.get("Groups").body["totalResults"] == 2


def test_a_second_group_with_the_same_name_is_a_409(scim, mappings):
    scim.post("Groups", group_body("Engineering A"))
    before = snapshot()
    assert_scim_error(scim.post("Groups", group_body("Engineering A")), 409, "uniqueness")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"displayName": "No schemas"}, "invalidSyntax"),
        (group_body(""), "invalidValue"),
        ({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}, "invalidValue"),
        (group_body("Bad members", "abc"), "invalidValue"),
        (group_body("Unknown member", 987654321), "invalidValue"),
        ({**group_body("Members not a list"), "members": {"value": "1"}}, "invalidValue"),
    ],
    ids=["no-schemas", "empty-name", "no-name", "non-numeric-member", "unknown-member", "members-object"],
)
def test_a_malformed_group_is_refused_with_400_and_nothing_written(scim, mappings, body, scim_type):
    before = snapshot()
    assert_scim_error(scim.post("Groups", body), 400, scim_type)
    assert snapshot() == before


def test_a_group_patch_naming_an_unknown_member_changes_nothing(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    group_id = scim.post("Groups", group_body("Engineering A", ann.pk)).body["id"]
    before = snapshot()
    response = scim.patch(
        f"Groups/{group_id}",
        patch_body(
            {"op": "remove", "path": f'members[value eq "{ann.pk}"]'},
            {"op": "add", "path": "members", "value": [{"value": "987654321"}]},
        ),
    )
    assert_scim_error(response, 400, "invalidValue")
    assert snapshot() == before
    assert memberships(ann) == {"team-a": (TeamRole.MEMBER, Source.SCIM)}
