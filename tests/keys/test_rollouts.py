"""Rollouts: keys for a whole team in one decision. The gateway is the sandbox as its own process; the
50-person rollout runs through a real Redis and a real `rqworker` process, with the sandbox answering 503
(its fault switch) in the middle."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from govsite import inbox
from govsite.accounts import services as account_services
from govsite.accounts.models import OrgRole, TeamRole
from keys import gateway_handlers, selectors, services
from keys.models import GatewayCommand, KeyRequest, KeyRollout, VirtualKey
from tests.factories import SsoGroupMappingFactory, TeamFactory, classification, make_user
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def rollout_input(team, models, **overrides) -> services.RolloutInput:
    values = {
        "team": team,
        "purpose": "Claude Code for every engineer of the team",
        "data_classification": classification("internal"),
        "models": list(models),
        "monthly_budget": Decimal("40"),
        "expiry_days": 60,
    }
    values.update(overrides)
    return services.RolloutInput(**values)


def _team_of(size: int, *, slug: str):
    team = TeamFactory(slug=slug, name=slug.title())
    lead = make_user(email=f"lead@{slug}.example.com", teams={team: TeamRole.APPROVER})
    people = [make_user(email=f"p{i:03d}@{slug}.example.com", teams={team: TeamRole.MEMBER}) for i in range(size - 1)]
    return team, lead, people


def _events(action: str, key: VirtualKey) -> int:
    return AuditEvent.objects.filter(action=action, target_type="keys.virtualkey", target_id=str(key.pk)).count()


def _gateway_keys(gateway, team) -> list[dict]:
    with gateway.client() as client:
        return client.key_list_all(team_id=gateway_handlers.gateway_team_id(team.pk))


# --- the whole rollout, through a real worker and a gateway that fails half-way ---------------------------


def test_a_rollout_of_50_people_provisions_50_keys_each_once_through_a_gateway_outage(
    rq_worker, live_gateway, admin_user, open_model
):
    team, lead, people = _team_of(50, slug="rollout-fifty")
    rollout = services.rollout_create(requester=lead, data=rollout_input(team, [open_model]))
    # Every admin call takes a little while, so the outage below lands while keys are being made.
    live_gateway.faults(delay_next=400, seconds=0.03)
    assert services.rollout_approve(rollout=rollout, approver=admin_user) == 50

    keys = VirtualKey.objects.filter(request__rollout=rollout)
    wait_until(lambda: keys.filter(status=VirtualKey.Status.ACTIVE).count() >= 10, timeout=120)
    live_gateway.faults(fail_next=25, status=503, message="upstream connect error")
    # The outage ends once the 25 failures are answered; commands that failed wait for their back-off and
    # the sweeper (cron, every minute) finds them: run it as if the back-off had passed.
    deadline = time.monotonic() + 180
    while keys.filter(status=VirtualKey.Status.ACTIVE).count() < 50:
        assert time.monotonic() < deadline, (
            f"{keys.exclude(status=VirtualKey.Status.ACTIVE).count()} keys not active; the worker's log:\n"
            + "\n".join(rq_worker.log.read_text(errors="replace").splitlines()[-40:])
        )
        services.gateway_commands_sweep(now=timezone.now() + timedelta(hours=2))
        time.sleep(1)

    commands = GatewayCommand.objects.filter(kind=GatewayCommand.Kind.KEY_GENERATE, key__request__rollout=rollout)
    assert commands.count() == 50  # one command per key
    assert commands.filter(attempts__gt=1).exists(), "the outage failed no key's command: it did not land mid-way"
    assert set(commands.values_list("status", flat=True)) == {GatewayCommand.Status.DONE}
    # One team-and-users sync for the rollout, not one per key.
    sync = GatewayCommand.objects.get(kind=GatewayCommand.Kind.ROLLOUT_SYNC)
    assert sync.status == GatewayCommand.Status.DONE and len(sync.payload["users"]) == 50

    at_gateway = _gateway_keys(live_gateway, team)
    aliases = [k["key_alias"] for k in at_gateway]
    assert len(at_gateway) == 50 and len(set(aliases)) == 50  # each key made exactly once
    tokens = {k["key_alias"]: k["token"] for k in at_gateway}
    for key in keys.select_related("owner"):
        assert tokens[key.alias] == key.token_hash
        assert _events("key.provisioned", key) == 1
        assert _events("key.provisioning_requested", key) == 1
    assert sorted(keys.values_list("owner__email", flat=True)) == sorted(p.email for p in [lead, *people])


# --- people who join later ----------------------------------------------------------------------------------


def _approved_rollout(team, lead, admin, models, **overrides) -> KeyRollout:
    rollout = services.rollout_create(requester=lead, data=rollout_input(team, models, **overrides))
    services.rollout_approve(rollout=rollout, approver=admin)
    rollout.refresh_from_db()
    return rollout


def test_a_member_added_after_the_rollout_gets_a_key(live_gateway, admin_user, open_model):
    team, lead, _ = _team_of(3, slug="joiners")
    rollout = _approved_rollout(
        team, lead, admin_user, [open_model], include_joiners=True, ends_on=timezone.now().date() + timedelta(days=30)
    )
    assert VirtualKey.objects.filter(request__rollout=rollout, status=VirtualKey.Status.ACTIVE).count() == 3

    newcomer = make_user(email="newcomer@joiners.example.com")
    mail.outbox.clear()
    account_services.membership_add(actor=admin_user, team=team, user=newcomer)

    key = VirtualKey.objects.get(request__rollout=rollout, owner=newcomer)
    assert key.status == VirtualKey.Status.ACTIVE  # its own command ran (in-process here) against the sandbox
    assert key.request.requested_by == lead and key.request.approvals.get().approver == admin_user
    assert rollout.members.get(user=newcomer).joined_later
    assert AuditEvent.objects.filter(action="key_rollout.member_joined", data__user=newcomer.email).count() == 1
    assert [m.to for m in mail.outbox if m.subject.startswith("[govsite] A key for")] == [[newcomer.email]]
    assert list(selectors.rollout_keys_waiting_to_be_revealed(user=newcomer)) == [key]
    assert len(_gateway_keys(live_gateway, team)) == 4


def test_someone_joining_through_a_scim_group_gets_a_key(live_gateway, admin_user, open_model):
    team, lead, _ = _team_of(2, slug="scim-joiners")
    SsoGroupMappingFactory(group="Engineering", team=team, team_role=TeamRole.MEMBER)
    rollout = _approved_rollout(
        team, lead, admin_user, [open_model], include_joiners=True, ends_on=timezone.now().date() + timedelta(days=7)
    )
    token, _ = account_services.scim_token_create(actor=admin_user, name="okta")
    hired = make_user(email="hired@scim-joiners.example.com")
    account_services.scim_group_create(token=token, display_name="Engineering", member_ids=[hired.pk])
    assert VirtualKey.objects.get(request__rollout=rollout, owner=hired).status == VirtualKey.Status.ACTIVE


def test_joiners_get_no_key_after_the_end_date_nor_from_a_rollout_that_does_not_include_them(
    live_gateway, admin_user, open_model
):
    team, lead, _ = _team_of(2, slug="closed")
    ended = _approved_rollout(
        team, lead, admin_user, [open_model], include_joiners=True, ends_on=timezone.now().date() + timedelta(days=1)
    )
    closed = _approved_rollout(team, lead, admin_user, [open_model])
    KeyRollout.objects.filter(pk=ended.pk).update(ends_on=timezone.now().date() - timedelta(days=1))
    late = make_user(email="late@closed.example.com")
    account_services.membership_add(actor=admin_user, team=team, user=late)
    assert not VirtualKey.objects.filter(owner=late).exists()
    assert not ended.members.filter(user=late).exists() and not closed.members.filter(user=late).exists()


# --- separation of duties and second approval -----------------------------------------------------------------


def test_a_rollout_cannot_be_decided_by_the_person_who_asked(client, team_a, open_model):
    lead = make_user(email="lead@a.example.com", teams={team_a: TeamRole.APPROVER})
    other = make_user(email="other-lead@a.example.com", teams={team_a: TeamRole.APPROVER})
    member = make_user(email="m@a.example.com", teams={team_a: TeamRole.MEMBER})
    rollout = services.rollout_create(
        requester=lead, data=rollout_input(team_a, [open_model], whole_team=False, people=[member])
    )
    with pytest.raises(PermissionDenied):
        services.rollout_approve(rollout=rollout, approver=lead)
    with pytest.raises(PermissionDenied):
        services.rollout_reject(rollout=rollout, approver=lead, note="no")
    assert not selectors.rollout_queue(user=lead).exists()
    client.force_login(lead)
    response = client.post(reverse("rollout_decide", args=[rollout.pk]), {"decision": "approve"})
    assert response.status_code == 403
    rollout.refresh_from_db()
    assert rollout.status == KeyRollout.Status.PENDING and not VirtualKey.objects.exists()
    # Another approver of the team decides it; the page shows the decision form to them only.
    client.force_login(other)
    assert 'action="/rollouts/' in client.get(reverse("rollout_detail", args=[rollout.pk])).content.decode()
    assert list(selectors.rollout_queue(user=other)) == [rollout]


def test_nobody_decides_a_rollout_that_gives_them_a_key(team_a, open_model, admin_user):
    lead = make_user(email="lead@a.example.com", teams={team_a: TeamRole.APPROVER})
    colleague = make_user(email="colleague@a.example.com", teams={team_a: TeamRole.APPROVER})
    rollout = services.rollout_create(requester=lead, data=rollout_input(team_a, [open_model]))  # the whole team
    assert not selectors.rollout_queue(user=colleague).exists()
    with pytest.raises(PermissionDenied):
        services.rollout_approve(rollout=rollout, approver=colleague)
    assert list(selectors.rollout_queue(user=admin_user)) == [rollout]


def test_a_restricted_model_needs_an_admins_approval_too(live_gateway, team_a, open_model, restricted_model):
    lead = make_user(email="lead@a.example.com", teams={team_a: TeamRole.APPROVER})
    other = make_user(email="other@a.example.com", teams={team_a: TeamRole.APPROVER})
    member = make_user(email="m@a.example.com", teams={team_a: TeamRole.MEMBER})
    admin = make_user(email="root@example.com", org_roles=[OrgRole.ADMIN])
    rollout = services.rollout_create(
        requester=lead,
        data=rollout_input(
            team_a,
            [open_model, restricted_model],
            data_classification=classification("internal"),
            whole_team=False,
            people=[member],
        ),
    )
    assert rollout.needs_admin_approval
    assert services.rollout_approve(rollout=rollout, approver=other) is None
    assert not VirtualKey.objects.exists()
    assert services.rollout_approve(rollout=rollout, approver=admin) == 1
    key = VirtualKey.objects.get()
    assert sorted(key.request.approvals.values_list("approver__email", flat=True)) == sorted([other.email, admin.email])


def test_the_form_names_each_field_in_error(client, team_a, team_b, open_model):
    lead = make_user(email="lead@a.example.com", teams={team_a: TeamRole.APPROVER})
    outsider = make_user(email="outsider@b.example.com", teams={team_b: TeamRole.MEMBER})
    client.force_login(lead)
    response = client.post(
        reverse("rollout_create"),
        {
            "team": team_a.pk,
            "whole_team": "no",
            "people": [],
            "include_joiners": "on",
            "purpose": "Pilot",
            "data_classification": classification("internal").pk,
            "models": [open_model.pk],
            "monthly_budget": "0",
            "expiry_days": "30",
        },
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert {"people", "include_joiners", "monthly_budget"} <= set(errors)
    with pytest.raises(ValidationError) as exc:
        services.rollout_validate(
            requester=lead, data=rollout_input(team_a, [open_model], whole_team=False, people=[outsider])
        )
    assert "outsider@b.example.com" in str(exc.value.message_dict["people"])
    assert not KeyRollout.objects.exists()


# --- reveal, the rollout's page, revoking ------------------------------------------------------------------------


def test_each_owner_reveals_their_own_key_once_and_the_page_shows_who_did(client, live_gateway, admin_user, open_model):
    team, lead, people = _team_of(4, slug="reveal")
    mail.outbox.clear()
    rollout = _approved_rollout(team, lead, admin_user, [open_model])
    told = sorted(m.to[0] for m in mail.outbox if m.subject.startswith("[govsite] A key for"))
    assert told == sorted(p.email for p in [lead, *people])  # every member told by email

    first = VirtualKey.objects.get(request__rollout=rollout, owner=people[0])
    assert list(selectors.rollout_keys_waiting_to_be_revealed(user=people[0])) == [first]
    # ... and in their inbox, counted in the navigation, linking to the key's page where it is revealed.
    waiting_before, _ = inbox.navigation_counts(user=people[0])
    client.force_login(people[0])
    page = client.get(reverse("inbox")).content.decode()
    assert "Keys a rollout made for me, to reveal" in page and reverse("key_detail", args=[first.pk]) in page
    with pytest.raises(PermissionDenied):
        services.key_reveal(key=first, actor=lead)  # the requester never sees someone else's key
    secret = services.key_reveal(key=first, actor=people[0])
    assert live_gateway.chat(secret).status_code == 200
    assert not selectors.rollout_keys_waiting_to_be_revealed(user=people[0]).exists()
    assert inbox.navigation_counts(user=people[0])[0] == waiting_before - 1
    assert reverse("key_detail", args=[first.pk]) not in client.get(reverse("inbox")).content.decode()
    with pytest.raises(services.InvalidTransition):
        services.key_reveal(key=first, actor=people[0])

    client.force_login(lead)
    page = client.get(reverse("rollout_detail", args=[rollout.pk])).content.decode()
    assert "4 keys · 4 active" in page and "1 revealed by their owner" in page
    assert page.count("not yet") >= 3
    assert KeyRequest.objects.filter(rollout=rollout, status=KeyRequest.Status.APPROVED).count() == 4


def test_revoking_the_rollout_revokes_every_key(client, live_gateway, admin_user, open_model):
    team, lead, people = _team_of(6, slug="revoke")
    rollout = _approved_rollout(
        team, lead, admin_user, [open_model], include_joiners=True, ends_on=timezone.now().date() + timedelta(days=9)
    )
    assert len(_gateway_keys(live_gateway, team)) == 6
    client.force_login(lead)
    assert client.get(reverse("rollout_revoke", args=[rollout.pk])).status_code == 200
    response = client.post(reverse("rollout_revoke", args=[rollout.pk]), {"reason": "pilot over"})
    assert response.status_code == 302

    keys = VirtualKey.objects.filter(request__rollout=rollout)
    assert set(keys.values_list("status", flat=True)) == {VirtualKey.Status.REVOKED}
    assert _gateway_keys(live_gateway, team) == []
    for key in keys:
        assert _events("key.revoked", key) == 1 and _events("key.deleted_in_gateway", key) == 1
    rollout.refresh_from_db()
    assert rollout.status == KeyRollout.Status.REVOKED
    # Nobody joins a revoked rollout.
    account_services.membership_add(actor=admin_user, team=team, user=make_user(email="after@revoke.example.com"))
    assert keys.count() == 6


def test_the_rollout_page_reads_a_fixed_number_of_queries_whatever_its_size(client, settings, admin_user, open_model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.REDIS_URL = ""
    settings.LITELLM_URL = "http://127.0.0.1:9"  # nothing listens: the keys stay provisioning, the page still reads
    counts = []
    for size in (3, 12):
        team, lead, _ = _team_of(size, slug=f"size-{size}")
        rollout = _approved_rollout(team, lead, admin_user, [open_model])
        client.force_login(lead)
        with CaptureQueriesContext(connection) as ctx:
            page = client.get(reverse("rollout_detail", args=[rollout.pk]))
        assert page.status_code == 200 and f"{size} keys" in page.content.decode()
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_a_rollouts_key_commands_reach_the_queue_in_batches_each_command_once(
    redis_queue, live_gateway, admin_user, open_model
):
    """The sync's completion issues one command per key and queues them a batch per job, so no worker pays a
    job's overhead per key; each job claims and completes each of its commands on its own."""
    import django_rq

    from keys.services.commands import BATCH

    team, lead, _ = _team_of(BATCH + 5, slug="rollout-batches")
    rollout = services.rollout_create(requester=lead, data=rollout_input(team, [open_model]))
    services.rollout_approve(rollout=rollout, approver=admin_user)
    queue = django_rq.get_queue("default")
    (sync_job,) = queue.get_jobs()
    assert sync_job.func_name == "keys.jobs.run_gateway_command"
    queue.empty()
    sync_job.perform()  # the team and its users at the gateway, in this process

    jobs = queue.get_jobs()
    assert [j.func_name for j in jobs] == ["keys.jobs.run_gateway_commands"] * 2
    batches = [j.args[0] for j in jobs]
    assert [len(b) for b in batches] == [BATCH, 5]
    commands = GatewayCommand.objects.filter(kind=GatewayCommand.Kind.KEY_GENERATE, key__request__rollout=rollout)
    assert sorted(pk for b in batches for pk in b) == sorted(commands.values_list("pk", flat=True))

    assert jobs[1].perform() == {"done": 5}
    assert jobs[1].perform() == {"skipped": 5}  # run again (a redelivered job): nothing is done twice
    assert jobs[0].perform() == {"done": BATCH}
    keys = VirtualKey.objects.filter(request__rollout=rollout)
    assert keys.filter(status=VirtualKey.Status.ACTIVE).count() == BATCH + 5
    assert set(commands.values_list("attempts", flat=True)) == {1}
    assert len(_gateway_keys(live_gateway, team)) == BATCH + 5
