import calendar
import csv
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from budgets import disagreements, key_usage, quarantine, selectors, services
from budgets.forms import BudgetForm, DecisionForm, IncreaseRequestForm, IngestTokenForm, PeriodForm
from budgets.models import BudgetIncreaseRequest, IngestToken, QuarantinedRow
from govsite.accounts import permissions
from govsite.accounts.mfa import second_factor_required
from govsite.web import login_required, paginate, role_required, run_service
from keys import selectors as key_selectors

# --- budgets ---------------------------------------------------------------------------------------------


@login_required
def budget_list(request):
    page = paginate(request, selectors.budget_list(user=request.user), per_page=50)
    return render(
        request,
        "budgets/budget_list.html",
        {
            "page": page,
            "statuses": selectors.budget_statuses(page),
            "can_manage": permissions.can_manage_budgets(request.user),
        },
    )


@role_required(permissions.can_manage_budgets, "Only admins can set budgets.")
def budget_create(request):
    form = BudgetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, budget = run_service(
            form, lambda: services.budget_create(actor=request.user, **form.service_kwargs(editing=False))
        )
        if ok:
            messages.success(request, f"Budget for {budget.scope_label} created.")
            return redirect("budget_detail", pk=budget.pk)
    return render(
        request, "budgets/budget_form.html", {"form": form, "creating": True}, status=400 if form.errors else 200
    )


@role_required(permissions.can_manage_budgets, "Only admins can change budgets.")
def budget_edit(request, pk):
    budget = get_object_or_404(selectors.budget_list(user=request.user), pk=pk)
    initial = {name: getattr(budget, name) for name in services.BUDGET_FIELDS}
    initial.update(team=budget.team, user=budget.user, key=budget.key)
    form = BudgetForm(request.POST or None, initial=initial, budget=budget)
    if request.method == "POST" and form.is_valid():
        ok, budget = run_service(
            form,
            lambda: services.budget_update(actor=request.user, budget=budget, **form.service_kwargs(editing=True)),
        )
        if ok:
            messages.success(request, "Budget saved.")
            return redirect("budget_detail", pk=budget.pk)
    return render(
        request,
        "budgets/budget_form.html",
        {"form": form, "budget": budget, "creating": False},
        status=400 if form.errors else 200,
    )


@login_required
def budget_detail(request, pk):
    budget = get_object_or_404(selectors.budget_list(user=request.user), pk=pk)
    status = selectors.budget_status(budget)
    sees_people = (
        status.running and budget.scope == "team" and permissions.can_view_team_costs(request.user, budget.team_id)
    )
    return render(
        request,
        "budgets/budget_detail.html",
        {
            "budget": budget,
            "status": status,
            "projected": status.projected_date(),
            "by_person": selectors.budget_spend_by_person(budget, status.period_start, status.period_end)
            if sees_people
            else None,
            "alerts": budget.alerts.order_by("-created_at")[:20],
            "deliveries": selectors.budget_deliveries(budget),
            "open_block": selectors.budget_open_block(budget),
            "increases": selectors.budget_increases(budget)[:20],
            "can_manage": permissions.can_manage_budgets(request.user),
            "can_request": permissions.can_request_budget_increase(request.user, budget),
        },
    )


# --- increase requests -----------------------------------------------------------------------------------


@login_required
def budget_increase_request(request, pk):
    budget = get_object_or_404(selectors.budget_list(user=request.user), pk=pk)
    permissions.require(
        permissions.can_request_budget_increase(request.user, budget),
        "Only the team's members ask for more of its budget (a personal budget: its person).",
    )
    form = IncreaseRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        ok, increase = run_service(
            form,
            lambda: services.budget_increase_request_create(
                budget=budget,
                requester=request.user,
                amount=data["amount"],
                until=data["until"],
                justification=data["justification"],
            ),
        )
        if ok:
            messages.success(request, "Your request is with the people who decide it; you will hear back.")
            return redirect("budget_increase_detail", pk=increase.pk)
    status = selectors.budget_status(budget)
    return render(
        request,
        "budgets/increase_form.html",
        {"form": form, "budget": budget, "status": status},
        status=400 if form.errors else 200,
    )


@login_required
def key_cap_increase(request, pk):
    """Ask for more on one key's own monthly cap: the increase flow, its rules from the key's or team's budget."""
    key = get_object_or_404(key_selectors.keys_visible(user=request.user), pk=pk)
    permissions.require(
        permissions.can_request_key_cap_increase(request.user, key),
        "Only the key's owner or an approver of its team asks for a higher cap.",
    )
    form = IncreaseRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        ok, increase = run_service(
            form,
            lambda: services.key_cap_increase_request_create(
                key=key,
                requester=request.user,
                amount=data["amount"],
                until=data["until"],
                justification=data["justification"],
            ),
        )
        if ok:
            messages.success(request, "Your request is with the people who decide it; you will hear back.")
            return redirect("budget_increase_detail", pk=increase.pk)
    rules = services.key_cap_rules_budget(key)
    usage = key_usage.keys_with_usage(
        key_selectors.keys_visible(user=request.user).filter(pk=key.pk), today=timezone.now().date()
    ).get()
    return render(
        request,
        "budgets/key_cap_form.html",
        {"form": form, "key": usage, "rules": rules},
        status=400 if form.errors else 200,
    )


@role_required(permissions.can_decide_budget_increases, "Only approvers, finance and admins decide budget increases.")
def increase_queue(request):
    page = paginate(request, selectors.increase_queue(user=request.user), per_page=25)
    return render(request, "budgets/increase_queue.html", {"page": page, "decision_form": DecisionForm()})


@login_required
def increase_detail(request, pk):
    increase = get_object_or_404(selectors.increases_visible(user=request.user), pk=pk)
    return render(
        request,
        "budgets/increase_detail.html",
        {
            "increase": increase,
            "status": selectors.budget_status(increase.budget),
            "can_decide": increase.status == BudgetIncreaseRequest.Status.PENDING
            and permissions.can_decide_budget_increase(request.user, increase),
            "decision_form": DecisionForm(),
        },
    )


@require_POST
@role_required(permissions.can_decide_budget_increases, "Only approvers, finance and admins decide budget increases.")
@second_factor_required
def increase_decide(request, pk):
    increase = get_object_or_404(selectors.increases_visible(user=request.user), pk=pk)
    permissions.require_can_decide_budget_increase(request.user, increase)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
        return redirect("budget_increase_detail", pk=pk)
    note = form.cleaned_data["note"]
    try:
        if form.cleaned_data["decision"] == "approve":
            budget = services.budget_increase_approve(increase=increase, approver=request.user, note=note)
            if increase.key_id:
                increase.key.refresh_from_db(fields=["max_budget"])
                messages.success(request, f"Approved: the key's cap is now ${increase.key.max_budget:,.2f} a month.")
            else:
                messages.success(request, f"Approved: the budget is now ${budget.amount:,.2f}.")
        else:
            services.budget_increase_reject(increase=increase, approver=request.user, note=note)
            messages.success(request, "Rejected; the requester has been told why.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect("budget_increase_detail", pk=pk)


# --- notices -----------------------------------------------------------------------------------------------


@login_required
def notice_list(request):
    page = paginate(request, selectors.notice_list(user=request.user), per_page=50)
    return render(request, "budgets/notices.html", {"page": page})


@require_POST
@login_required
def notices_read(request):
    count = services.notices_mark_read(user=request.user)
    messages.success(request, f"{count} notice{'s' if count != 1 else ''} marked read.")
    return redirect("notice_list")


# --- reconciliation ----------------------------------------------------------------------------------------


@role_required(permissions.can_view_reconciliation, "Only admins, finance and auditors see the reconciliation.")
def reconciliation(request):
    today = timezone.now().date()
    form = PeriodForm(request.GET or None)
    start, end, by = today.replace(day=1), today.replace(day=calendar.monthrange(today.year, today.month)[1]), "key"
    if form.is_valid():
        start = form.cleaned_data["start"] or start
        end = form.cleaned_data["end"] or end
        by = form.cleaned_data["by"] or by
    rows = selectors.reconciliation_days(start=start, end=end, by=by)
    if request.GET.get("format") == "csv" and not form.errors:
        rows = list(rows)
        selectors.reconciliation_disagreements(rows, by=by)
        return _reconciliation_csv(rows, by=by, filename=f"reconciliation-{start:%Y-%m-%d}-{end:%Y-%m-%d}")
    page = paginate(request, rows, per_page=100)
    page.object_list = list(page.object_list)
    selectors.reconciliation_disagreements(page.object_list, by=by)
    return render(
        request,
        "budgets/reconciliation.html",
        {
            "form": form,
            "start": start,
            "end": end,
            "by": by,
            "page": page,
            "reasons": selectors.RECONCILIATION_REASONS,
            "totals": selectors.reconciliation_totals(start=start, end=end),
            "pull": selectors.pull_state(),
            "disagreements": disagreements.disagreement_summary(start=start, end=end),
            "quarantined": quarantine.quarantine_counts()[QuarantinedRow.Status.HELD],
            "spools": IngestToken.objects.filter(revoked_at__isnull=True).order_by("name"),
            "query": f"start={start:%Y-%m-%d}&end={end:%Y-%m-%d}&by={by}",
        },
        status=400 if form.errors else 200,
    )


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value) -> str:
    # A key alias or team name starting like a formula would run in a spreadsheet; numbers stay as they are.
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not isinstance(value, int | Decimal):
        return "'" + text
    return text


def _reconciliation_csv(rows: list[dict], *, by: str, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = csv.writer(response)
    owner = ["team"] if by == "team" else ["key", "token_hash", "team"]
    reasons = [source for source, _label in selectors.RECONCILIATION_REASONS]
    writer.writerow(
        ["day", *owner, "requests", "gateway", "ledger", "difference"]
        + [column for source in reasons for column in (f"{source}_rows", f"{source}_difference")]
        + ["disagreements"]
    )
    for row in rows:
        names = [row["team__name"]] if by == "team" else [row["key__alias"], row["token_hash"], row["team__name"]]
        explained = [value for source in reasons for value in (row[source], row[f"{source}_difference"])]
        found = "; ".join(
            f"{d['reason']}: {d['requests']} (gateway {d['gateway']}, litellm {d['computed']})"
            for d in row["disagreements"]
        )
        writer.writerow(
            [
                _csv_cell(value)
                for value in (
                    row["day"],
                    *names,
                    row["requests"],
                    row["gateway"],
                    row["ledger"],
                    row["difference"],
                    *explained,
                    found,
                )
            ]
        )
    return response


# --- ledger ingestion (admins) --------------------------------------------------------------------------------


def _ingest_page(request, form, *, new_secret: str = "", new_token=None, status: int = 200):
    return render(
        request,
        "budgets/ingest.html",
        {
            "form": form,
            "tokens": selectors.ingest_tokens(),
            "pull": selectors.pull_state(),
            "failing": selectors.deliveries_failing(),
            "new_secret": new_secret,
            "new_token": new_token,
        },
        status=status,
    )


@never_cache
@role_required(permissions.can_manage_ingest, "Only admins manage the ledger's ingestion.")
def ingest_settings(request):
    form = IngestTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, created = run_service(
            form, lambda: services.ingest_token_create(actor=request.user, name=form.cleaned_data["name"])
        )
        if ok:
            token, secret = created
            # Shown once, in this response only; it is not stored anywhere.
            response = _ingest_page(request, IngestTokenForm(), new_secret=secret, new_token=token)
            response["Cache-Control"] = "no-store"
            return response
    return _ingest_page(request, form, status=400 if form.errors else 200)


@require_POST
@role_required(permissions.can_manage_ingest, "Only admins manage the ledger's ingestion.")
def ingest_token_revoke(request, pk):
    token = get_object_or_404(IngestToken, pk=pk)
    try:
        services.ingest_token_revoke(actor=request.user, token=token)
        messages.success(request, f"Token {token.name} revoked; the gateway can no longer push with it.")
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect("ingest_settings")
