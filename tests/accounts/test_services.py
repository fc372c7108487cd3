"""Every write to people, teams, memberships, roles and SSO mappings writes its audit event,
in the same transaction, and a refused write changes and records nothing."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError

from audit.chain import verify
from audit.models import AuditEvent
from govsite.accounts import services
from govsite.accounts.models import (
    Membership,
    OrgRole,
    OrgRoleGrant,
    Source,
    SsoGroupMapping,
    Team,
    TeamRole,
    User,
    UserSession,
)
from tests.audit.helpers import actions, new_events
from tests.factories import MembershipFactory, SsoGroupMappingFactory, TeamFactory, make_user

pytestmark = pytest.mark.django_db


# --- teams ---------------------------------------------------------------------------------------


def test_creating_a_team_is_audited_with_who_and_what(admin_user):
    with new_events() as events:
        team = services.team_create(actor=admin_user, name="Platform", slug="platform", cost_centre="CC-7")
    assert actions(events) == ["team.created"]
    event = events[0]
    assert (event.actor_id, event.actor_label) == (admin_user.pk, "admin@example.com")
    assert (event.target_type, event.target_id, event.team_id) == ("accounts.team", str(team.pk), team.pk)
    assert event.data["after"]["slug"] == "platform"
    assert event.data["after"]["cost_centre"] == "CC-7"


def test_editing_a_team_is_audited_with_only_the_changed_fields(admin_user, team_a):
    with new_events() as events:
        services.team_update(actor=admin_user, team=team_a, description="Payments", cost_centre="CC-1")
    assert actions(events) == ["team.updated"]
    assert events[0].data == {
        "changes": {
            "description": {"before": "", "after": "Payments"},
            "cost_centre": {"before": "", "after": "CC-1"},
        }
    }
    team_a.refresh_from_db()
    assert team_a.description == "Payments"


def test_saving_a_team_without_changes_writes_no_event(admin_user, team_a):
    with new_events() as events:
        services.team_update(actor=admin_user, team=team_a, name=team_a.name, slug=team_a.slug)
    assert events == []


def test_team_with_a_taken_slug_is_refused_and_not_audited(admin_user, team_a):
    with new_events() as events, pytest.raises(ValidationError) as exc:
        services.team_create(actor=admin_user, name="Other name", slug=team_a.slug)
    assert "slug" in exc.value.error_dict
    assert events == []
    assert Team.objects.filter(name="Other name").count() == 0


# --- memberships ---------------------------------------------------------------------------------


def test_adding_a_member_is_audited(admin_user, team_a):
    person = make_user(email="new@example.com")
    with new_events() as events:
        membership = services.membership_add(actor=admin_user, team=team_a, user=person, role=TeamRole.APPROVER)
    assert actions(events) == ["membership.added"]
    assert events[0].team_id == team_a.pk
    assert events[0].data == {"user": "new@example.com", "role": "approver", "source": "manual"}
    assert (membership.role, membership.source) == (TeamRole.APPROVER, Source.MANUAL)


def test_changing_a_members_role_is_audited_with_before_and_after(admin_user, team_a):
    membership = MembershipFactory(team=team_a, role=TeamRole.MEMBER)
    with new_events() as events:
        services.membership_change_role(actor=admin_user, membership=membership, role=TeamRole.APPROVER)
    assert actions(events) == ["membership.role_changed"]
    assert events[0].data["before"] == "member"
    assert events[0].data["after"] == "approver"
    membership.refresh_from_db()
    assert membership.role == TeamRole.APPROVER


def test_setting_the_same_role_again_writes_no_event(admin_user, team_a):
    membership = MembershipFactory(team=team_a, role=TeamRole.APPROVER)
    with new_events() as events:
        services.membership_change_role(actor=admin_user, membership=membership, role=TeamRole.APPROVER)
    assert events == []


def test_removing_a_member_is_audited_and_the_membership_is_gone(admin_user, team_a):
    membership = MembershipFactory(team=team_a, user=make_user(email="leaver@example.com"))
    with new_events() as events:
        services.membership_remove(actor=admin_user, membership=membership)
    assert actions(events) == ["membership.removed"]
    assert events[0].data == {"user": "leaver@example.com", "role": "member", "source": "manual"}
    assert events[0].team_id == team_a.pk
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_adding_someone_already_in_the_team_is_a_user_error_and_not_audited(admin_user, member_a_user, team_a):
    with new_events() as events, pytest.raises(ValidationError) as exc:
        services.membership_add(actor=admin_user, team=team_a, user=member_a_user)
    assert list(exc.value.error_dict) == ["user"]
    assert events == []


# --- people and org roles ------------------------------------------------------------------------


def test_adding_a_person_is_audited_with_each_org_role_granted(admin_user):
    with new_events() as events:
        person = services.user_create(
            actor=admin_user, email="New.Person@Example.com", full_name="New Person", org_roles=[OrgRole.FINANCE]
        )
    assert person.email == "new.person@example.com"
    assert not person.has_usable_password()
    assert actions(events) == ["user.created", "user.org_role_granted"]
    assert events[0].data == {"email": "new.person@example.com", "full_name": "New Person"}
    assert events[1].data == {"role": "finance", "source": "manual"}
    assert {e.target_id for e in events} == {str(person.pk)}


def test_adding_a_person_whose_email_exists_in_other_case_is_refused(admin_user, member_a_user):
    with new_events() as events, pytest.raises(ValidationError) as exc:
        services.user_create(actor=admin_user, email="MEMBER-A@example.com")
    assert list(exc.value.error_dict) == ["email"]
    assert events == []


def test_granting_and_revoking_org_roles_is_audited_per_role(admin_user, member_a_user):
    with new_events() as granted:
        services.user_set_org_roles(actor=admin_user, user=member_a_user, roles=[OrgRole.AUDITOR, OrgRole.FINANCE])
    assert actions(granted) == ["user.org_role_granted", "user.org_role_granted"]
    assert sorted(e.data["role"] for e in granted) == ["auditor", "finance"]

    with new_events() as revoked:
        services.user_set_org_roles(actor=admin_user, user=member_a_user, roles=[OrgRole.FINANCE])
    assert actions(revoked) == ["user.org_role_revoked"]
    assert revoked[0].data == {"role": "auditor", "source": "manual"}
    assert set(OrgRoleGrant.objects.filter(user=member_a_user).values_list("role", flat=True)) == {"finance"}


def test_admin_cannot_remove_their_own_admin_role(admin_user):
    with new_events() as events, pytest.raises(ValidationError) as exc:
        services.user_set_org_roles(actor=admin_user, user=admin_user, roles=[OrgRole.FINANCE])
    assert list(exc.value.error_dict) == ["org_roles"]
    assert events == []
    assert OrgRoleGrant.objects.filter(user=admin_user, role=OrgRole.ADMIN).exists()


def test_deactivating_a_person_is_audited_and_ends_their_sessions(admin_user, member_a_user, member_a_client):
    assert UserSession.objects.filter(user=member_a_user).exists()
    session_keys = list(UserSession.objects.filter(user=member_a_user).values_list("session_key", flat=True))
    with new_events() as events:
        services.user_deactivate(actor=admin_user, user=member_a_user, reason="left the company")
    assert actions(events) == ["user.deactivated"]
    assert events[0].data == {"reason": "left the company"}
    member_a_user.refresh_from_db()
    assert not member_a_user.is_active
    assert member_a_user.deactivated_at is not None
    assert not Session.objects.filter(session_key__in=session_keys).exists()
    assert not UserSession.objects.filter(user=member_a_user).exists()


def test_deactivating_someone_already_deactivated_writes_no_second_event(admin_user):
    person = make_user(is_active=False)
    with new_events() as events:
        services.user_deactivate(actor=admin_user, user=person)
    assert events == []


def test_admin_cannot_deactivate_themselves(admin_user):
    with new_events() as events, pytest.raises(ValidationError):
        services.user_deactivate(actor=admin_user, user=admin_user)
    assert events == []
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_reactivating_a_person_is_audited(admin_user):
    person = make_user(is_active=False)
    with new_events() as events:
        services.user_reactivate(actor=admin_user, user=person)
    assert actions(events) == ["user.reactivated"]
    person.refresh_from_db()
    assert person.is_active
    assert person.deactivated_at is None


def test_reactivating_an_active_person_writes_no_event(admin_user, member_a_user):
    with new_events() as events:
        services.user_reactivate(actor=admin_user, user=member_a_user)
    assert events == []


# --- SSO mappings --------------------------------------------------------------------------------


def test_creating_an_sso_mapping_is_audited(admin_user, team_a):
    with new_events() as events:
        mapping = services.sso_mapping_create(
            actor=admin_user, group=" eng-a ", team=team_a, team_role=TeamRole.APPROVER
        )
    assert mapping.group == "eng-a"
    assert actions(events) == ["sso_mapping.created"]
    assert events[0].team_id == team_a.pk
    assert events[0].data == {"group": "eng-a", "team": "team-a", "team_role": "approver", "org_role": ""}


def test_creating_an_org_role_sso_mapping_is_audited(admin_user):
    with new_events() as events:
        services.sso_mapping_create(actor=admin_user, group="auditors", org_role=OrgRole.AUDITOR)
    assert actions(events) == ["sso_mapping.created"]
    assert events[0].data == {"group": "auditors", "team": None, "team_role": "", "org_role": "auditor"}


def test_duplicate_sso_mapping_is_a_user_error_and_not_audited(admin_user, team_a):
    SsoGroupMappingFactory(group="eng-a", team=team_a)
    with new_events() as events, pytest.raises(ValidationError) as exc:
        services.sso_mapping_create(actor=admin_user, group="eng-a", team=team_a, team_role=TeamRole.MEMBER)
    assert list(exc.value.error_dict) == ["group"]
    assert events == []
    assert SsoGroupMapping.objects.filter(group="eng-a").count() == 1


def test_deleting_an_sso_mapping_is_audited(admin_user, team_a):
    mapping = SsoGroupMappingFactory(group="eng-a", team=team_a)
    with new_events() as events:
        services.sso_mapping_delete(actor=admin_user, mapping=mapping)
    assert actions(events) == ["sso_mapping.deleted"]
    assert events[0].data["group"] == "eng-a"
    assert not SsoGroupMapping.objects.filter(pk=mapping.pk).exists()


# --- who may ---------------------------------------------------------------------------------------


def _every_write(world):
    team, person = world.team_a, world.users["member_a"]
    membership = Membership.objects.get(user=person, team=team)
    mapping = SsoGroupMappingFactory(team=team)
    stranger = make_user()
    deactivated = make_user(is_active=False)
    return {
        "team_create": lambda actor: services.team_create(actor=actor, name="X", slug="x"),
        "team_update": lambda actor: services.team_update(actor=actor, team=team, description="changed"),
        "membership_add": lambda actor: services.membership_add(actor=actor, team=team, user=stranger),
        "membership_change_role": lambda actor: services.membership_change_role(
            actor=actor, membership=membership, role=TeamRole.APPROVER
        ),
        "membership_remove": lambda actor: services.membership_remove(actor=actor, membership=membership),
        "user_create": lambda actor: services.user_create(actor=actor, email="x@example.com"),
        "user_set_org_roles": lambda actor: services.user_set_org_roles(
            actor=actor, user=person, roles=[OrgRole.ADMIN]
        ),
        "user_deactivate": lambda actor: services.user_deactivate(actor=actor, user=person),
        "user_reactivate": lambda actor: services.user_reactivate(actor=actor, user=deactivated),
        "sso_mapping_create": lambda actor: services.sso_mapping_create(actor=actor, group="g", org_role=OrgRole.ADMIN),
        "sso_mapping_delete": lambda actor: services.sso_mapping_delete(actor=actor, mapping=mapping),
    }


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (AuditEvent, Team, Membership, User, OrgRoleGrant, SsoGroupMapping))


@pytest.mark.parametrize("role", ["auditor", "finance", "approver_a", "member_a"])
def test_nobody_but_an_admin_can_change_people_teams_or_roles(world, role):
    actor = world.users[role]
    writes = _every_write(world)
    before = _counts()
    for name, write in writes.items():
        with pytest.raises(PermissionDenied):
            write(actor)
        assert _counts() == before, f"{role} was refused {name} but something was written"
    assert User.objects.get(pk=world.users["member_a"].pk).is_active


def test_a_deactivated_admin_can_change_nothing(admin_user, team_a):
    admin_user.is_active = False
    admin_user.save()
    with new_events() as events, pytest.raises(PermissionDenied):
        services.team_create(actor=admin_user, name="X", slug="x")
    assert events == []


# --- the trail as a whole --------------------------------------------------------------------------


def test_a_day_of_admin_work_leaves_a_chain_that_verifies(admin_user, team_a):
    person = services.user_create(actor=admin_user, email="p@example.com", org_roles=[OrgRole.FINANCE])
    membership = services.membership_add(actor=admin_user, team=team_a, user=person)
    services.membership_change_role(actor=admin_user, membership=membership, role=TeamRole.APPROVER)
    services.membership_remove(actor=admin_user, membership=membership)
    services.user_deactivate(actor=admin_user, user=person)
    services.user_reactivate(actor=admin_user, user=person)
    services.team_update(actor=admin_user, team=TeamFactory(), description="x")
    assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)) == [
        "user.created",
        "user.org_role_granted",
        "membership.added",
        "membership.role_changed",
        "membership.removed",
        "user.deactivated",
        "user.reactivated",
        "team.updated",
    ]
    result = verify()
    assert result.ok, result.line()
    assert result.count == 8


def test_an_event_written_through_a_page_carries_the_request_ip_and_id(admin_client):
    with new_events() as events:
        response = admin_client.post(
            "/teams/new/",
            {"name": "Web team", "slug": "web-team"},
            HTTP_X_REQUEST_ID="req-123",
            HTTP_USER_AGENT="pytest-browser",
        )
    assert response.status_code == 302
    assert response["X-Request-ID"] == "req-123"
    assert actions(events) == ["team.created"]
    assert (events[0].ip, events[0].request_id, events[0].user_agent) == ("127.0.0.1", "req-123", "pytest-browser")
