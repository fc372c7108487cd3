"""Permission rows for the auditor workspace (see tests/permissions.py for the four checks).

Exporting evidence and drawing a sample are reads for an auditor: they change no access, so their
POST rows are `writes=False` (they still leave an audit event, which the tests of those pages check).
Every access-review write is admin-only or for the team's approvers, never an auditor.
"""

from __future__ import annotations

import atexit
import itertools
import zipfile
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from audit import evidence
from audit.models import AccessReview, AccessReviewDecision, AccessReviewItem, EvidenceExport, EvidenceSample
from tests.factories import VirtualKeyFactory
from tests.permissions import ADMIN, APPROVER_A, AUDITOR, MEMBER_A, MEMBER_B, UrlCase, register

EXPORTERS = frozenset({ADMIN, AUDITOR})
ADMIN_ONLY = frozenset({ADMIN})
REVIEWERS = frozenset({ADMIN, APPROVER_A})
MISSING = 987_654_321
_n = itertools.count(1)


def _member_of(world, team):
    return world.users[MEMBER_B] if team == world.team_b else world.users[MEMBER_A]


def _today() -> str:
    return timezone.now().date().isoformat()


def _export(world, team):
    admin = world.users[ADMIN]
    export = EvidenceExport.objects.create(
        requested_by=admin,
        requested_by_label=admin.email,
        period_start=timezone.now().date(),
        period_end=timezone.now().date(),
        status=EvidenceExport.Status.DONE,
        progress=100,
    )
    # A small ZIP in the export directory, removed when the test process ends.
    directory = evidence.export_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = Path(directory) / f"evidence-url-case-{export.pk}-{next(_n)}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", "{}")
    atexit.register(path.unlink, missing_ok=True)
    EvidenceExport.objects.filter(pk=export.pk).update(file_name=path.name, file_size=path.stat().st_size)
    return {"pk": export.pk}


def _export_form(world, team):
    return {"period_start": _today(), "period_end": _today(), "sample_size": 5, "sample_seed": "url-case"}


def _sample(world, team):
    key = VirtualKeyFactory(team=team, owner=_member_of(world, team))
    sample = EvidenceSample.objects.create(
        drawn_by=world.users[AUDITOR],
        drawn_by_label="auditor@example.com",
        period_start=timezone.now().date(),
        period_end=timezone.now().date(),
        size=1,
        seed="url-case",
        population=1,
        key_ids=[key.pk],
    )
    return {"pk": sample.pk}


def _sample_form(world, team):
    VirtualKeyFactory(team=team, owner=_member_of(world, team))
    return {"period_start": _today(), "period_end": _today(), "size": 1, "seed": "url-case"}


def _review(world, *, decided: bool = False, team=None) -> tuple[AccessReview, AccessReviewItem]:
    """A campaign with one snapshot row of the team's member's key, written directly."""
    team = team or world.team_a
    owner = _member_of(world, team)
    key = VirtualKeyFactory(team=team, owner=owner)
    now = timezone.now()
    review = AccessReview.objects.create(
        name=f"URL case review {next(_n)}",
        opened_by=world.users[ADMIN],
        due_at=now + timedelta(days=7),
        on_due=AccessReview.OnDue.ESCALATE,
        key_count=1,
    )
    item = AccessReviewItem.objects.create(
        review=review,
        key=key,
        snapshot_at=now,
        key_alias=key.alias,
        key_kind=key.kind,
        key_status=key.status,
        owner=owner,
        owner_email=owner.email,
        owner_active=True,
        requested_by=owner,
        team=team,
        team_name=team.name,
        allowed_models=list(key.allowed_models),
        max_budget=key.max_budget,
        expires_at=key.expires_at,
        key_created_at=key.created_at,
        spend_90d=0,
    )
    if decided:
        AccessReviewDecision.objects.create(
            item=item,
            decision="keep",
            rationale="in use",
            decided_by=world.users[ADMIN],
            key_status_at_decision="active",
        )
    return review, item


def _review_pk(world, team):
    return {"pk": _review(world)[0].pk}


def _decided_review_pk(world, team):
    return {"pk": _review(world, decided=True)[0].pk}


def _item_pk(world, team):
    return {"pk": _review(world, team=team)[1].pk}


def _open_form(world, team):
    VirtualKeyFactory(team=team, owner=_member_of(world, team))
    return {
        "name": f"URL case {next(_n)}",
        "due_on": (timezone.now().date() + timedelta(days=14)).isoformat(),
        "on_due": "escalate",
        "teams": [team.pk],
    }


def _decision_form(world, team):
    return {"decision": "keep", "rationale": "used every day for the team's CI"}


register(
    # evidence exports
    UrlCase("evidence_export_list", allowed=EXPORTERS),
    UrlCase("evidence_export_start", allowed=EXPORTERS),
    UrlCase("evidence_export_start", method="post", data=_export_form, allowed=EXPORTERS, writes=False),
    UrlCase("evidence_export_detail", kwargs=_export, allowed=EXPORTERS, unreachable=lambda w: {"pk": MISSING}),
    UrlCase("evidence_export_download", kwargs=_export, allowed=EXPORTERS, unreachable=lambda w: {"pk": MISSING}),
    # samples
    UrlCase("sample_list", allowed=EXPORTERS),
    UrlCase("sample_draw", allowed=EXPORTERS),
    UrlCase("sample_draw", method="post", data=_sample_form, allowed=EXPORTERS, writes=False),
    UrlCase("sample_detail", kwargs=_sample, allowed=EXPORTERS, unreachable=lambda w: {"pk": MISSING}),
    # access reviews
    UrlCase("access_review_list", allowed=EXPORTERS),
    UrlCase("access_review_open", allowed=ADMIN_ONLY),
    UrlCase(
        "access_review_open",
        method="post",
        data=_open_form,
        allowed=ADMIN_ONLY,
        effect=lambda c: AccessReview.objects.filter(name=c.data["name"]).exists(),
    ),
    UrlCase("access_review_detail", kwargs=_review_pk, allowed=EXPORTERS, unreachable=lambda w: {"pk": MISSING}),
    UrlCase(
        "access_review_sign_off",
        method="post",
        kwargs=_decided_review_pk,
        data=lambda w, t: {"note": "All keys reviewed."},
        allowed=ADMIN_ONLY,
        effect=lambda c: AccessReview.objects.get(pk=c.pk).signed_off_at is not None,
        unreachable=lambda w: {"pk": MISSING},
    ),
    UrlCase("access_review_queue", allowed=REVIEWERS),
    UrlCase("access_review_decide", kwargs=_item_pk, scoped=True, allowed=REVIEWERS),
    UrlCase(
        "access_review_decide",
        method="post",
        kwargs=_item_pk,
        data=_decision_form,
        scoped=True,
        allowed=REVIEWERS,
        effect=lambda c: AccessReviewDecision.objects.filter(item_id=c.pk, decided_by=c.user).exists(),
    ),
    UrlCase(
        "access_review_decide_bulk",
        method="post",
        data=lambda w, t: {f"decision_{_item_pk(w, t)['pk']}": "keep", "rationale": "used every day for CI"},
        allowed=REVIEWERS,
        effect=lambda c: AccessReviewDecision.objects.filter(
            item_id=int(next(iter(c.data)).removeprefix("decision_")), decided_by=c.user
        ).exists(),
    ),
    # leavers
    UrlCase("leaver_report", allowed=EXPORTERS),
)
