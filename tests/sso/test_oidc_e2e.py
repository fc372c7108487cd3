"""SSO end to end: a real OpenID Connect provider, govsite as a real server, the authorization-code flow.

The provider is panva's certified `oidc-provider` (tests/sso/oidc/server.mjs); govsite runs under gunicorn
with OIDC_* in its environment, so settings.py's provider registration, allauth's views (login, callback,
token exchange, userinfo, ID token checks) and our adapter all run as in production. People and their
groups live in the provider's JSON file, which each test rewrites before a login.
"""

from __future__ import annotations

import httpx
import pytest
from allauth.socialaccount.models import SocialAccount

from audit.models import AuditEvent
from govsite.accounts import services
from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, Source, TeamRole, User
from tests.factories import SsoGroupMappingFactory, TeamFactory, make_user
from tests.sso.flows import PROVIDER_ID, forms_of, sso_login, sso_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

METHOD = f"sso:{PROVIDER_ID}"


@pytest.fixture
def teams(transactional_db):
    """Three teams and the SSO mappings an admin set up: groups → team roles and an org role."""
    a = TeamFactory(name="Payments", slug="payments")
    b = TeamFactory(name="Search", slug="search")
    c = TeamFactory(name="Platform", slug="platform")
    SsoGroupMappingFactory(group="eng-payments", team=a, team_role=TeamRole.MEMBER)
    SsoGroupMappingFactory(group="eng-payments-leads", team=a, team_role=TeamRole.APPROVER)
    SsoGroupMappingFactory(group="eng-search", team=b, team_role=TeamRole.MEMBER)
    SsoGroupMappingFactory(group="finance", team=None, team_role="", org_role=OrgRole.FINANCE)
    return {"payments": a, "search": b, "platform": c}


def memberships(user: User) -> dict[str, tuple[str, str]]:
    return {m.team.slug: (m.role, m.source) for m in Membership.objects.filter(user=user).select_related("team")}


def org_roles(user: User) -> dict[str, str]:
    return dict(OrgRoleGrant.objects.filter(user=user).values_list("role", "source"))


def events(action: str, user: User) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=str(user.pk)).order_by("seq"))


def test_first_sso_login_creates_the_person_with_the_teams_and_roles_of_their_groups(
    oidc_provider, govsite_site, teams
):
    oidc_provider.set_users(
        sso_user(
            "ann@example.com",
            name="Ann Example",
            groups=["eng-payments-leads", "eng-search", "finance", "not-mapped"],
            password="correct horse",
            sub="ann-0001",
        )
    )

    login = sso_login(govsite_site.url, "ann@example.com", "correct horse")

    assert login.answered == ["login", "confirm"]  # the provider's sign-in form, then its consent form
    assert login.provider_sent_a_code, login.urls
    assert login.final_path == "/", f"ended at {login.response.url}:\n{login.response.text[:2000]}"
    assert login.signed_in(govsite_site.url)
    ann = User.objects.get(email="ann@example.com")
    assert ann.full_name == "Ann Example"
    assert ann.is_active
    assert not ann.has_usable_password()
    assert SocialAccount.objects.get(user=ann).uid == "ann-0001"
    assert memberships(ann) == {
        "payments": (TeamRole.APPROVER, Source.SSO),
        "search": (TeamRole.MEMBER, Source.SSO),
    }
    assert org_roles(ann) == {OrgRole.FINANCE: Source.SSO}
    [event] = events("user.login", ann)
    assert event.actor_id == ann.pk
    assert event.data["method"] == METHOD
    assert event.data["groups"] == ["eng-payments-leads", "eng-search", "finance", "not-mapped"]
    assert sorted(event.data["changes"]["teams_added"]) == ["payments:approver", "search:member"]
    assert event.data["changes"]["roles_added"] == ["finance"]
    # What the person sees: their teams on the home page.
    home = login.client.get(f"{govsite_site.url}/").text
    assert "Payments" in home and "Search" in home


def test_a_wrong_password_at_the_provider_signs_nobody_in(oidc_provider, govsite_site, teams):
    oidc_provider.set_users(sso_user("bob@example.com", groups=["eng-search"], password="right"))

    login = sso_login(govsite_site.url, "bob@example.com", "wrong")

    assert login.response.status_code == 401
    assert "Unknown email or wrong password" in login.response.text
    assert not login.provider_sent_a_code
    assert not login.signed_in(govsite_site.url)
    assert not User.objects.filter(email="bob@example.com").exists()


def test_a_later_login_with_changed_groups_updates_sso_grants_and_keeps_manual_ones(oidc_provider, govsite_site, teams):
    person = sso_user("cleo@example.com", name="Cleo", groups=["eng-payments", "eng-search", "finance"])
    oidc_provider.set_users(person)
    assert sso_login(govsite_site.url, "cleo@example.com").final_path == "/"
    cleo = User.objects.get(email="cleo@example.com")
    assert memberships(cleo) == {"payments": (TeamRole.MEMBER, Source.SSO), "search": (TeamRole.MEMBER, Source.SSO)}
    # An admin adds Cleo to Platform by hand, and grants auditor by hand.
    admin = make_user(email="admin@example.com", org_roles=[OrgRole.ADMIN])
    services.membership_add(actor=admin, team=teams["platform"], user=cleo, role=TeamRole.APPROVER)
    services.user_set_org_roles(actor=admin, user=cleo, roles=[OrgRole.FINANCE, OrgRole.AUDITOR])

    # In the identity provider Cleo becomes a payments lead and leaves search and finance.
    oidc_provider.set_users({**person, "groups": ["eng-payments-leads"]})
    login = sso_login(govsite_site.url, "cleo@example.com")

    assert login.final_path == "/"
    assert login.signed_in(govsite_site.url)
    assert memberships(cleo) == {
        "payments": (TeamRole.APPROVER, Source.SSO),
        "platform": (TeamRole.APPROVER, Source.MANUAL),
    }
    # finance was granted by SSO and then confirmed by hand (user_set_org_roles keeps the SSO grant's
    # source): the claim no longer has it, so it goes; the auditor role set by hand stays.
    assert org_roles(cleo) == {OrgRole.AUDITOR: Source.MANUAL}
    last_login = events("user.login", cleo)[-1]
    assert last_login.data["groups"] == ["eng-payments-leads"]
    assert last_login.data["changes"] == {
        "teams_added": ["payments:approver"],
        "teams_removed": ["search"],
        "roles_added": [],
        "roles_removed": ["finance"],
    }
    removed = AuditEvent.objects.filter(action="membership.removed", data__user="cleo@example.com").get()
    assert removed.data["reason"] == "no longer in the SSO groups claim"


def test_a_person_deactivated_in_govsite_is_refused_after_signing_in_at_the_provider(
    oidc_provider, govsite_site, teams
):
    person = sso_user("dan@example.com", name="Dan", groups=["eng-payments"])
    oidc_provider.set_users(person)
    first = sso_login(govsite_site.url, "dan@example.com")
    assert first.signed_in(govsite_site.url)
    dan = User.objects.get(email="dan@example.com")
    admin = make_user(email="admin@example.com", org_roles=[OrgRole.ADMIN])

    services.user_deactivate(actor=admin, user=dan, reason="left the company")

    # The session Dan had ends with the deactivation.
    assert not first.signed_in(govsite_site.url)
    # The identity provider still knows Dan (IdP offboarding lags) and even adds a group.
    oidc_provider.set_users({**person, "groups": ["eng-payments", "finance"]})
    again = sso_login(govsite_site.url, "dan@example.com")

    assert again.provider_sent_a_code, "the provider should have authenticated Dan"
    assert again.final_path == "/accounts/inactive/"
    assert not again.signed_in(govsite_site.url)
    dan.refresh_from_db()
    assert not dan.is_active
    assert org_roles(dan) == {}, "a refused login must not sync groups"
    [refused] = events("user.login_refused", dan)
    assert refused.actor_label == "dan@example.com"
    assert refused.data == {"reason": "deactivated", "method": METHOD}
    assert len(events("user.login", dan)) == 1  # only the first, before deactivation


def test_a_deactivated_person_who_never_used_sso_is_refused_too(oidc_provider, govsite_site, teams):
    # Found by their (verified) email, not by an earlier SSO link: no second account is made for them.
    eve = make_user(email="eve@example.com", is_active=False)
    oidc_provider.set_users(sso_user("eve@example.com", name="Eve", groups=["eng-search"]))

    login = sso_login(govsite_site.url, "eve@example.com")

    assert login.provider_sent_a_code
    assert login.final_path == "/accounts/inactive/"
    assert "This account is deactivated" in login.response.text
    assert not login.signed_in(govsite_site.url)
    assert User.objects.filter(email__iexact="eve@example.com").count() == 1
    assert memberships(eve) == {}
    [refused] = events("user.login_refused", eve)
    assert refused.data == {"reason": "deactivated", "method": METHOD}


# --- SSO_ONLY ---------------------------------------------------------------------------------------------


def test_sso_only_shows_only_the_sso_button_and_refuses_a_password_post(oidc_provider, sso_only_site, teams):
    make_user(email="pw@example.com", password="a-long-enough-password")
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        page = client.get(f"{sso_only_site.url}/accounts/login/")
        assert page.status_code == 200
        assert 'name="password"' not in page.text
        assert "Sign in with Test IdP" in page.text
        [sso_button] = forms_of(page)
        token = sso_button.fields["csrfmiddlewaretoken"]
        response = client.post(
            f"{sso_only_site.url}/accounts/login/",
            data={"login": "pw@example.com", "password": "a-long-enough-password", "csrfmiddlewaretoken": token},
        )
        assert response.status_code == 403
        assert client.get(f"{sso_only_site.url}/").status_code == 302  # still signed out
        # No way around it: no sign-up, and no password to reset.
        for path in ("/accounts/signup/", "/accounts/password/reset/"):
            assert client.get(f"{sso_only_site.url}{path}").status_code == 404, path
    assert not events("user.login", User.objects.get(email="pw@example.com"))

    oidc_provider.set_users(sso_user("fay@example.com", name="Fay", groups=["eng-search"]))
    login = sso_login(sso_only_site.url, "fay@example.com")
    assert login.final_path == "/"
    assert memberships(User.objects.get(email="fay@example.com")) == {"search": (TeamRole.MEMBER, Source.SSO)}
