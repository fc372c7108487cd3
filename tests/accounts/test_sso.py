"""SSO: the groups claim decides SSO-granted teams and roles on every login; hand-set ones stay.

Logins are built from allauth's own objects (SocialLogin / SocialAccount with the claims in
`extra_data`, as the openid_connect provider stores them) and go through our adapter's
`pre_login` exactly as allauth calls it, or through allauth's whole social-login flow.
"""

from __future__ import annotations

import pytest
from allauth.account.adapter import get_adapter
from allauth.core import context as allauth_context
from allauth.socialaccount.internal.flows.login import complete_login
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import RequestFactory, override_settings
from django.urls import reverse

from govsite.accounts import services
from govsite.accounts.adapters import AccountAdapter, groups_from_sociallogin
from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, Source, TeamRole, User
from tests.audit.helpers import actions, new_events
from tests.factories import MembershipFactory, OrgRoleGrantFactory, SsoGroupMappingFactory, make_user

pytestmark = pytest.mark.django_db

PROVIDER = "openid_connect"


def sociallogin_for(user: User, groups, *, where: str = "userinfo", claim: str = "groups") -> SocialLogin:
    claims = {"sub": f"sub-{user.email}", "email": user.email, claim: groups}
    extra_data = {"userinfo": claims} if where == "userinfo" else {"id_token": claims, "userinfo": {"sub": "x"}}
    if where == "top":
        extra_data = claims
    account = SocialAccount(user=user, provider=PROVIDER, uid=claims["sub"], extra_data=extra_data)
    return SocialLogin(user=user, account=account)


def _request():
    request = RequestFactory().get("/accounts/oidc/sso/login/callback/")
    SessionMiddleware(lambda r: None).process_request(request)
    request.session.save()
    request._messages = FallbackStorage(request)
    request.user = AnonymousUser()
    return request


def sso_pre_login(user: User, groups):
    """What allauth does once the identity provider vouched for `user`: call the adapter's pre_login."""
    request = _request()
    adapter = get_adapter(request)
    assert isinstance(adapter, AccountAdapter)
    return adapter.pre_login(
        request,
        user,
        email_verification="none",
        signal_kwargs={"sociallogin": sociallogin_for(user, groups)},
        email=None,
        signup=False,
        redirect_url=None,
    )


def memberships(user: User) -> dict[str, tuple[str, str]]:
    return {m.team.slug: (m.role, m.source) for m in Membership.objects.filter(user=user).select_related("team")}


def org_roles(user: User) -> dict[str, str]:
    return dict(OrgRoleGrant.objects.filter(user=user).values_list("role", "source"))


@pytest.fixture
def mappings(team_a, team_b):
    SsoGroupMappingFactory(group="eng-a", team=team_a, team_role=TeamRole.MEMBER)
    SsoGroupMappingFactory(group="eng-a-leads", team=team_a, team_role=TeamRole.APPROVER)
    SsoGroupMappingFactory(group="eng-b", team=team_b, team_role=TeamRole.MEMBER)
    SsoGroupMappingFactory(group="finance", team=None, team_role="", org_role=OrgRole.FINANCE)
    SsoGroupMappingFactory(group="auditors", team=None, team_role="", org_role=OrgRole.AUDITOR)


@pytest.fixture
def person(db):
    return make_user(email="sso.person@example.com")


# --- reading the claim ---------------------------------------------------------------------------


def test_groups_are_read_from_the_userinfo_claim(person):
    assert groups_from_sociallogin(sociallogin_for(person, ["eng-a", "finance"])) == ["eng-a", "finance"]


def test_groups_are_read_from_the_id_token_when_userinfo_has_none(person):
    assert groups_from_sociallogin(sociallogin_for(person, ["eng-b"], where="id_token")) == ["eng-b"]


def test_groups_are_read_from_flat_extra_data(person):
    assert groups_from_sociallogin(sociallogin_for(person, ["eng-b"], where="top")) == ["eng-b"]


def test_a_single_group_sent_as_a_string_counts_as_one_group(person):
    assert groups_from_sociallogin(sociallogin_for(person, "eng-a")) == ["eng-a"]


def test_no_groups_claim_means_no_groups(person):
    login = sociallogin_for(person, ["eng-a"])
    login.account.extra_data = {"userinfo": {"sub": "x", "email": person.email}}
    assert groups_from_sociallogin(login) == []


@override_settings(OIDC_GROUPS_CLAIM="roles")
def test_the_groups_claim_name_comes_from_settings(person):
    assert groups_from_sociallogin(sociallogin_for(person, ["eng-a"], claim="roles")) == ["eng-a"]
    assert groups_from_sociallogin(sociallogin_for(person, ["eng-a"], claim="groups")) == []


# --- what a login grants --------------------------------------------------------------------------


def test_first_sso_login_gives_the_teams_and_org_roles_the_groups_map_to(mappings, person):
    with new_events() as events:
        assert sso_pre_login(person, ["eng-a", "finance", "not-mapped"]) is None

    assert memberships(person) == {"team-a": (TeamRole.MEMBER, Source.SSO)}
    assert org_roles(person) == {OrgRole.FINANCE: Source.SSO}
    assert actions(events) == ["membership.added", "user.org_role_granted", "user.login"]
    assert events[0].actor_label == "system"
    login = events[-1]
    assert (login.actor_id, login.target_id) == (person.pk, str(person.pk))
    assert login.data["method"] == f"sso:{PROVIDER}"
    assert login.data["groups"] == ["eng-a", "finance", "not-mapped"]
    assert login.data["changes"] == {
        "teams_added": ["team-a:member"],
        "teams_removed": [],
        "roles_added": ["finance"],
        "roles_removed": [],
    }


def test_two_groups_for_the_same_team_give_the_higher_role(mappings, person):
    sso_pre_login(person, ["eng-a", "eng-a-leads"])
    assert memberships(person) == {"team-a": (TeamRole.APPROVER, Source.SSO)}


def test_role_changed_in_the_claim_changes_the_sso_membership(mappings, person, team_a):
    MembershipFactory(user=person, team=team_a, role=TeamRole.MEMBER, source=Source.SSO)
    with new_events() as events:
        sso_pre_login(person, ["eng-a-leads"])
    assert memberships(person) == {"team-a": (TeamRole.APPROVER, Source.SSO)}
    assert actions(events) == ["membership.role_changed", "user.login"]


def test_same_claim_again_changes_nothing_but_still_records_the_login(mappings, person):
    sso_pre_login(person, ["eng-a", "finance"])
    with new_events() as events:
        sso_pre_login(person, ["eng-a", "finance"])
    assert actions(events) == ["user.login"]
    assert events[0].data["changes"] == {"teams_added": [], "teams_removed": [], "roles_added": [], "roles_removed": []}


def test_groups_dropped_from_the_claim_remove_sso_grants_but_keep_those_set_by_hand(mappings, person, team_a, team_b):
    MembershipFactory(user=person, team=team_a, role=TeamRole.MEMBER, source=Source.SSO)
    MembershipFactory(user=person, team=team_b, role=TeamRole.APPROVER, source=Source.MANUAL)
    OrgRoleGrantFactory(user=person, role=OrgRole.FINANCE, source=Source.SSO)
    OrgRoleGrantFactory(user=person, role=OrgRole.AUDITOR, source=Source.MANUAL)

    with new_events() as events:
        sso_pre_login(person, [])

    assert memberships(person) == {"team-b": (TeamRole.APPROVER, Source.MANUAL)}
    assert org_roles(person) == {OrgRole.AUDITOR: Source.MANUAL}
    assert actions(events) == ["membership.removed", "user.org_role_revoked", "user.login"]
    assert events[0].data["reason"] == "no longer in the SSO groups claim"
    assert events[0].team_id == team_a.pk
    assert events[1].data == {"role": "finance", "source": "sso", "reason": "no longer in the SSO groups claim"}
    assert events[2].data["changes"] == {
        "teams_added": [],
        "teams_removed": ["team-a"],
        "roles_added": [],
        "roles_removed": ["finance"],
    }


def test_membership_set_by_hand_is_not_overridden_by_the_claim(mappings, person, team_a):
    MembershipFactory(user=person, team=team_a, role=TeamRole.MEMBER, source=Source.MANUAL)
    with new_events() as events:
        sso_pre_login(person, ["eng-a-leads"])
    assert memberships(person) == {"team-a": (TeamRole.MEMBER, Source.MANUAL)}
    assert actions(events) == ["user.login"]


def test_org_role_set_by_hand_stays_when_the_claim_stops_granting_it(mappings, person):
    OrgRoleGrantFactory(user=person, role=OrgRole.FINANCE, source=Source.MANUAL)
    sso_pre_login(person, ["finance"])
    assert org_roles(person) == {OrgRole.FINANCE: Source.MANUAL}
    sso_pre_login(person, [])
    assert org_roles(person) == {OrgRole.FINANCE: Source.MANUAL}


def test_deleting_a_mapping_removes_its_membership_at_the_next_login(mappings, admin_user, person, team_b):
    sso_pre_login(person, ["eng-b"])
    assert memberships(person) == {"team-b": (TeamRole.MEMBER, Source.SSO)}
    services.sso_mapping_delete(actor=admin_user, mapping=team_b.sso_mappings.get(group="eng-b"))
    sso_pre_login(person, ["eng-b"])
    assert memberships(person) == {}


def test_deactivated_person_is_refused_at_sso_login_and_gets_no_teams_or_roles(mappings, person):
    person.is_active = False
    person.save()
    with new_events() as events:
        response = sso_pre_login(person, ["eng-a", "finance"])

    assert response is not None and response.status_code == 302
    assert response.url == reverse("account_inactive")
    assert memberships(person) == {}
    assert org_roles(person) == {}
    assert actions(events) == ["user.login_refused"]
    assert events[0].data == {"reason": "deactivated", "method": f"sso:{PROVIDER}"}
    assert events[0].actor_label == person.email


def test_sync_service_reports_what_changed(mappings, person, team_b):
    MembershipFactory(user=person, team=team_b, role=TeamRole.MEMBER, source=Source.SSO)
    with new_events() as events:
        changes = services.sso_sync_groups(user=person, groups=["eng-a-leads", "auditors"])
    assert changes == {
        "teams_added": ["team-a:approver"],
        "teams_removed": ["team-b"],
        "roles_added": ["auditor"],
        "roles_removed": [],
    }
    assert sorted(actions(events)) == ["membership.added", "membership.removed", "user.org_role_granted"]


def test_new_sso_role_takes_effect_in_the_same_request(mappings, person):
    from govsite.accounts import permissions

    assert not permissions.is_finance(person)
    sso_pre_login(person, ["finance"])
    assert permissions.is_finance(person)


# --- through allauth's whole social-login flow ----------------------------------------------------


def allauth_sso_login(user: User, groups):
    """allauth's own flow for a returning SSO user: look up the SocialAccount, then log in."""
    SocialAccount.objects.get_or_create(user=user, provider=PROVIDER, uid=f"sub-{user.email}")
    incoming = sociallogin_for(User(email=user.email), groups)
    request = _request()
    with allauth_context.request_context(request):
        response = complete_login(request, incoming)
    return request, response


def test_allauth_sso_login_syncs_groups_and_logs_the_person_in(mappings, person):
    with new_events() as events:
        request, response = allauth_sso_login(person, ["eng-b", "auditors"])
    assert response.status_code == 302
    assert response.url != reverse("account_inactive")
    assert request.user == person
    assert memberships(person) == {"team-b": (TeamRole.MEMBER, Source.SSO)}
    assert org_roles(person) == {OrgRole.AUDITOR: Source.SSO}
    assert actions(events)[-1] == "user.login"
    assert events[-1].data["method"] == f"sso:{PROVIDER}"


def test_allauth_sso_login_of_a_deactivated_person_ends_on_the_inactive_page(mappings, person):
    person.is_active = False
    person.save()
    with new_events() as events:
        request, response = allauth_sso_login(person, ["eng-b"])
    assert response.url == reverse("account_inactive")
    assert not request.user.is_authenticated
    assert memberships(person) == {}
    assert actions(events) == ["user.login_refused"]


# --- SSO_ONLY -------------------------------------------------------------------------------------


def test_login_page_shows_the_password_form_when_sso_is_not_required(client):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content


@override_settings(SOCIALACCOUNT_ONLY=True)
def test_sso_only_hides_the_password_form(client):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    assert b'name="password"' not in response.content
    assert b"Single sign-on is required" in response.content


@override_settings(SOCIALACCOUNT_ONLY=True)
def test_sso_only_refuses_a_password_login_post(client):
    make_user(email="pw@example.com", password="a-long-enough-password")
    with new_events() as events:
        response = client.post(
            reverse("account_login"), {"login": "pw@example.com", "password": "a-long-enough-password"}
        )
    assert response.status_code == 403
    assert not client.get(reverse("home")).wsgi_request.user.is_authenticated
    assert "user.login" not in actions(events)
