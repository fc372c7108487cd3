from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit import checkpoints, reports, reviews, selectors, services
from audit.forms import (
    AccessReviewDecisionForm,
    AccessReviewOpenForm,
    AuditFilterForm,
    EvidenceExportForm,
    PeriodForm,
    SampleForm,
    SignOffForm,
)
from audit.models import AccessReview, AuditEvent, EvidenceSample
from audit.period import Period
from govsite.accounts import permissions
from govsite.accounts.mfa import second_factor_required
from govsite.errors import InvalidTransition
from govsite.replica import on_replica
from govsite.web import paginate, role_required, run_service


@role_required(permissions.can_view_audit_log, "Only admins and auditors can read the audit log.")
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.none()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        events = selectors.audit_event_list(
            user=request.user,
            actor=data["actor"],
            action=data["action"],
            team_id=data["team"].pk if data["team"] else None,
            date_from=data["date_from"],
            date_to=data["date_to"],
        )
    elif not form.is_bound:
        events = selectors.audit_event_list(user=request.user)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/log.html",
        {
            "form": form,
            "page": paginate(request, events, per_page=50),
            "query": query.urlencode(),
            "actions": selectors.audit_actions(),
            "signing": _checkpoint_signing(),
        },
    )


def _checkpoint_signing() -> dict:
    """The checkpoints' public key, for auditors to compare with a bundle's (`verify_evidence --public-key`)."""
    try:
        key = checkpoints.public_key()
    except ImproperlyConfigured as exc:
        return {"pem": "", "fingerprint": "", "error": str(exc), "last": None}
    if key is None:
        return {"pem": "", "fingerprint": "", "last": checkpoints.latest()}
    return {
        "pem": checkpoints.public_pem(key),
        "fingerprint": checkpoints.fingerprint(key),
        "last": checkpoints.latest(),
    }


# --- the auditor workspace -------------------------------------------------------------------------------

EXPORTERS = "Only admins and auditors can export evidence."
REVIEW_READERS = "Only admins and auditors can read access reviews."


def _without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _default_period() -> dict:
    today = timezone.now().date()
    return {"period_start": today - timedelta(days=89), "period_end": today}


# evidence exports


@role_required(permissions.can_export_evidence, EXPORTERS)
def evidence_export_list(request):
    return render(
        request,
        "audit/evidence_list.html",
        {
            "form": EvidenceExportForm(initial=_default_period()),
            "page": paginate(request, selectors.evidence_exports(user=request.user), per_page=25),
        },
    )


@role_required(permissions.can_export_evidence, EXPORTERS)
@second_factor_required
def evidence_export_start(request):
    form = EvidenceExportForm(request.POST or None, initial=_default_period())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        ok, export = run_service(
            form,
            lambda: services.evidence_export_start(
                actor=request.user,
                period_start=data["period_start"],
                period_end=data["period_end"],
                teams=data["teams"],
                sample_size=data["sample_size"],
                sample_seed=data["sample_seed"],
            ),
        )
        if ok:
            messages.success(request, f"Evidence export #{export.pk} started; this page follows its progress.")
            # The page refreshes until the bundle is built, then starts the download once.
            return redirect(reverse("evidence_export_detail", args=[export.pk]) + "?then=download")
    return render(request, "audit/evidence_start.html", {"form": form}, status=400 if form.errors else 200)


@role_required(permissions.can_export_evidence, EXPORTERS)
def evidence_export_detail(request, pk):
    export = get_object_or_404(selectors.evidence_exports(user=request.user), pk=pk)
    downloadable = services.export_file(export) is not None
    then_download = request.GET.get("then") == "download" and export.requested_by_id == request.user.pk
    return render(
        request,
        "audit/evidence_detail.html",
        {
            "export": export,
            "row_counts": reports.in_report_order(export.row_counts or {}),
            "downloadable": downloadable,
            "then_download": then_download,
            "start_download": then_download and downloadable,
        },
    )


@role_required(permissions.can_export_evidence, EXPORTERS)
@second_factor_required(methods=("GET", "POST"))
def evidence_export_download(request, pk):
    export = get_object_or_404(selectors.evidence_exports(user=request.user), pk=pk)
    path = services.export_file(export)
    if path is None:
        raise Http404("This export has no file to download.")
    services.evidence_export_downloaded(actor=request.user, export=export)
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=export.download_name, content_type="application/zip"
    )


# samples


@role_required(permissions.can_draw_sample, EXPORTERS)
def sample_list(request):
    return render(
        request,
        "audit/sample_list.html",
        {
            "form": SampleForm(initial=_default_period()),
            "page": paginate(request, selectors.evidence_samples(user=request.user), per_page=25),
        },
    )


@role_required(permissions.can_draw_sample, EXPORTERS)
def sample_draw(request):
    form = SampleForm(request.POST or None, initial=_default_period())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        ok, sample = run_service(
            form,
            lambda: services.evidence_sample_draw(
                actor=request.user,
                period_start=data["period_start"],
                period_end=data["period_end"],
                size=data["size"],
                seed=data["seed"],
                teams=data["teams"],
            ),
        )
        if ok:
            return redirect("sample_detail", pk=sample.pk)
    return render(request, "audit/sample_draw.html", {"form": form}, status=400 if form.errors else 200)


@role_required(permissions.can_draw_sample, EXPORTERS)
def sample_detail(request, pk):
    sample: EvidenceSample = get_object_or_404(selectors.evidence_samples(user=request.user), pk=pk)
    rows = list(reports.sample_rows(sample.key_ids))
    export_form = EvidenceExportForm(
        initial={
            "period_start": sample.period_start,
            "period_end": sample.period_end,
            "teams": sample.team_ids,
            "sample_size": sample.size,
            "sample_seed": sample.seed,
        }
    )
    return render(request, "audit/sample_detail.html", {"sample": sample, "rows": rows, "export_form": export_form})


# access reviews


@role_required(permissions.can_view_access_reviews, REVIEW_READERS)
def access_review_list(request):
    return render(
        request,
        "audit/review_list.html",
        {
            "page": paginate(request, selectors.access_reviews(user=request.user), per_page=25),
            "can_open": permissions.can_open_access_review(request.user),
        },
    )


@role_required(permissions.can_open_access_review, "Only admins open access reviews.")
def access_review_open(request):
    form = AccessReviewOpenForm(request.POST or None, initial={"due_on": timezone.now().date() + timedelta(days=14)})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        ok, review = run_service(
            form,
            lambda: reviews.access_review_open(
                actor=request.user,
                name=data["name"],
                due_on=data["due_on"],
                on_due=data["on_due"],
                teams=data["teams"],
            ),
        )
        if ok:
            messages.success(request, f"{review.name} is open: {review.key_count} keys snapshotted, reviewers told.")
            return redirect("access_review_detail", pk=review.pk)
    return render(request, "audit/review_open.html", {"form": form}, status=400 if form.errors else 200)


@role_required(permissions.can_view_access_reviews, REVIEW_READERS)
def access_review_detail(request, pk):
    review: AccessReview = get_object_or_404(selectors.access_reviews(user=request.user), pk=pk)
    items = paginate(request, selectors.access_review_items(review=review), per_page=100)
    return render(
        request,
        "audit/review_detail.html",
        {
            "review": review,
            "page": items,
            "outcome": selectors.access_review_outcome(review=review),
            "can_sign_off": review.is_open and permissions.can_sign_off_access_review(request.user),
            "sign_off_form": SignOffForm(),
        },
    )


@require_POST
@role_required(permissions.can_sign_off_access_review, "Only admins sign off access reviews.")
def access_review_sign_off(request, pk):
    review = get_object_or_404(selectors.access_reviews(user=request.user), pk=pk)
    form = SignOffForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write the sign-off statement.")
        return redirect("access_review_detail", pk=pk)
    try:
        reviews.access_review_sign_off(actor=request.user, review=review, note=form.cleaned_data["note"])
        messages.success(request, f"{review.name} is signed off.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect("access_review_detail", pk=pk)


@role_required(permissions.can_review_access, "Only team approvers and admins review keys.")
def access_review_queue(request):
    return render(
        request,
        "audit/review_queue.html",
        {"page": paginate(request, selectors.access_review_queue(user=request.user), per_page=50)},
    )


def _bulk_choices(post) -> tuple[dict[int, str], dict[int, Decimal | None], dict[str, str]]:
    """Per row: the decision (`decision_<item>`: keep, reduce or revoke; empty: not this time) and, for a
    reduction, the new monthly budget (`budget_<item>`). Returns the decisions, budgets and row errors."""
    decisions: dict[int, str] = {}
    budgets: dict[int, Decimal | None] = {}
    errors: dict[str, str] = {}
    for name, value in post.items():
        if not name.startswith("decision_") or not value:
            continue
        item_id = name.removeprefix("decision_")
        if not item_id.isdigit() or value not in ("keep", "reduce", "revoke"):
            errors[name] = "Choose keep, reduce or revoke."
            continue
        decisions[int(item_id)] = value
        raw = (post.get(f"budget_{item_id}") or "").strip()
        budgets[int(item_id)] = None
        if value == "reduce":
            try:
                budgets[int(item_id)] = Decimal(raw)
            except (InvalidOperation, ValueError):
                errors[f"budget_{item_id}"] = "A reduction here lowers the monthly budget: give the new amount."
    return decisions, budgets, errors


@require_POST
@role_required(permissions.can_review_access, "Only team approvers and admins review keys.")
def access_review_decide_bulk(request):
    """Keep, reduce or revoke per row of the queue, one rationale for all the rows chosen; revocations are
    confirmed on a second page first. Each row is decided by the same service as a single decision (its own
    transaction and audit event; who may decide is checked per row)."""
    decisions, budgets, errors = _bulk_choices(request.POST)
    rationale = (request.POST.get("rationale") or "").strip()
    if not decisions:
        errors["decisions"] = "Choose keep, reduce or revoke on at least one row."
    if not rationale:
        errors["rationale"] = "Give the reason for these decisions: a review without a rationale is not evidence."
    items = {i.pk: i for i in selectors.access_review_queue(user=request.user).filter(pk__in=list(decisions))}
    if errors:
        for message in errors.values():
            messages.error(request, message)
        return redirect("access_review_queue")
    revocations = [items[pk] for pk, decision in decisions.items() if decision == "revoke" and pk in items]
    if revocations and request.POST.get("confirm_revoke") != "yes":
        return render(
            request,
            "audit/review_bulk_confirm.html",
            {
                "revocations": revocations,
                "fields": [(k, v) for k, v in request.POST.items() if k != "csrfmiddlewaretoken"],
            },
        )
    done, refused = [], []
    for pk, decision in decisions.items():
        item = items.get(pk)
        if item is None:
            refused.append(f"item {pk}: not waiting for you any more")
            continue
        try:
            reviews.access_review_decide(
                actor=request.user, item=item, decision=decision, rationale=rationale, max_budget=budgets.get(pk)
            )
            done.append(f"{item.key_alias}: {decision}")
        except (ValidationError, InvalidTransition, PermissionDenied) as exc:
            refused.append(f"{item.key_alias}: {' '.join(getattr(exc, 'messages', [str(exc)]))}")
    if done:
        messages.success(request, f"{len(done)} decision{'s' if len(done) != 1 else ''} recorded — " + "; ".join(done))
    if refused:
        messages.error(request, "Not decided: " + "; ".join(refused))
    return redirect("access_review_queue")


@role_required(permissions.can_review_access, "Only team approvers and admins review keys.")
def access_review_decide(request, pk):
    item = get_object_or_404(selectors.access_review_queue(user=request.user), pk=pk)
    form = AccessReviewDecisionForm(request.POST or None, key_models=list(item.key.allowed_models))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        reduce = data["decision"] == "reduce"
        ok, _ = run_service(
            form,
            lambda: reviews.access_review_decide(
                actor=request.user,
                item=item,
                decision=data["decision"],
                rationale=data["rationale"],
                keep_models=(data["keep_models"] or None) if reduce else None,
                max_budget=data["max_budget"] if reduce else None,
            ),
        )
        if ok:
            messages.success(request, f"{item.key_alias}: {data['decision']} recorded.")
            return redirect("access_review_queue")
    return render(request, "audit/review_decide.html", {"form": form, "item": item}, status=400 if form.errors else 200)


# leavers


@role_required(permissions.can_view_leaver_report, "Only admins and auditors can read the leaver report.")
@on_replica
def leaver_report(request):
    form = PeriodForm(request.GET or None, initial=_default_period())
    rows: list[dict] = []
    period = None
    if not form.is_bound:
        initial = _default_period()
        period = Period(initial["period_start"], initial["period_end"])
    elif form.is_valid():
        try:
            period = Period.checked(form.cleaned_data["period_start"], form.cleaned_data["period_end"])
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                form.add_error(field, errors)
    if period is not None:
        rows = list(reports.leaver_rows(period))
    return render(
        request,
        "audit/leavers.html",
        {
            "form": form,
            "period": period,
            "page": paginate(request, rows, per_page=100),
            "sla_hours": int(reports.leaver_sla().total_seconds() // 3600),
            "failed": sum(1 for row in rows if row["check_key_removed_in_time"] == reports.FAIL),
            "query": _without_page(request),
        },
        status=400 if form.errors else 200,
    )
