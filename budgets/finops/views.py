"""The FinOps pages: FOCUS exports (ask, follow the progress, download; schedules for admins) and the month-end
chargeback (page, CSV, printable page; close and reopen)."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from budgets.finops import chargeback, exports, selectors
from budgets.finops.forms import (
    ChargebackCloseForm,
    ChargebackReopenForm,
    FocusExportForm,
    FocusScheduleForm,
    MonthForm,
)
from budgets.models import FocusExport, FocusFormat
from govsite.accounts import permissions
from govsite.errors import InvalidTransition
from govsite.web import paginate, role_required, run_service

EXPORTERS = "Only admins, finance and auditors export FOCUS files."
SCHEDULERS = "Only admins schedule FOCUS exports."
READERS = "Only admins, finance and auditors see the chargeback."
CLOSERS = "Only finance and admins close or reopen a month."


@role_required(permissions.can_export_focus, EXPORTERS)
def focus_exports(request):
    today = timezone.now().date()
    form = FocusExportForm(
        request.POST or None, initial={"period_start": chargeback.previous_month(today), "period_end": today}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        ok, export = run_service(
            form,
            lambda: exports.focus_export_start(
                actor=request.user,
                period_start=data["period_start"],
                period_end=data["period_end"],
                fmt=data["format"],
                strict=data["strict"],
            ),
        )
        if ok:
            messages.success(request, f"FOCUS export #{export.pk} is queued; its progress is shown below.")
            return redirect("focus_exports")
    page = paginate(request, selectors.focus_exports_visible(user=request.user), per_page=25)
    running = any(e.status in (FocusExport.Status.QUEUED, FocusExport.Status.RUNNING) for e in page.object_list)
    return render(
        request,
        "budgets/focus_exports.html",
        {
            "form": form,
            "page": page,
            "refresh": running,
            "can_schedule": permissions.can_manage_focus_schedules(request.user),
        },
        status=400 if form.errors else 200,
    )


@role_required(permissions.can_export_focus, EXPORTERS)
def focus_export_download(request, pk: int):
    export = get_object_or_404(selectors.focus_exports_visible(user=request.user), pk=pk)
    path = exports.focus_export_file(export)
    if path is None:
        raise Http404("This export has no file to download (not finished, failed, or written elsewhere).")
    kind = "application/vnd.apache.parquet" if export.format == FocusFormat.PARQUET else "text/csv"
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name, content_type=kind)


@require_POST
@role_required(permissions.can_manage_focus_schedules, SCHEDULERS)
def focus_export_retry(request, pk: int):
    export = get_object_or_404(selectors.focus_exports_visible(user=request.user), pk=pk)
    try:
        exports.focus_export_retry(actor=request.user, export=export)
        messages.success(request, f"FOCUS export #{export.pk} is queued again.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("focus_exports")


@role_required(permissions.can_manage_focus_schedules, SCHEDULERS)
def focus_schedules(request):
    form = FocusScheduleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, schedule = run_service(
            form, lambda: exports.focus_schedule_create(actor=request.user, data=dict(form.cleaned_data))
        )
        if ok:
            messages.success(request, f"Schedule “{schedule.name}” saved: its first export runs within the hour.")
            return redirect("focus_schedules")
    schedules = selectors.focus_schedules(user=request.user)
    return render(
        request,
        "budgets/focus_schedules.html",
        {"form": form, "schedules": schedules},
        status=400 if form.errors else 200,
    )


@require_POST
@role_required(permissions.can_manage_focus_schedules, SCHEDULERS)
def focus_schedule_toggle(request, pk: int):
    schedule = get_object_or_404(selectors.focus_schedules(user=request.user), pk=pk)
    exports.focus_schedule_set_active(actor=request.user, schedule=schedule, active=not schedule.is_active)
    return redirect("focus_schedules")


# --- chargeback ------------------------------------------------------------------------------------------------


def _month_of(request) -> tuple[MonthForm, date]:
    form = MonthForm(request.GET or None)
    default = chargeback.previous_month(timezone.now().date())
    if form.is_valid() and form.cleaned_data["month"]:
        return form, form.cleaned_data["month"]
    return form, default


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A team or cost centre starting like a formula would run in a spreadsheet; numbers stay as they are.
    if text.startswith(_FORMULA_START) and not isinstance(value, int | Decimal):
        return "'" + text
    return text


@role_required(permissions.can_view_chargeback, READERS)
def chargeback_report(request):
    form, month = _month_of(request)
    report = chargeback.chargeback_report(month=month)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="chargeback-{month:%Y-%m}.csv"'
        writer = csv.writer(response)
        writer.writerow(chargeback.CSV_HEADER)
        writer.writerows([_cell(value) for value in row] for row in chargeback.chargeback_csv_rows(report))
        return response
    template = "budgets/chargeback_print.html" if request.GET.get("print") else "budgets/chargeback.html"
    return render(
        request,
        template,
        {
            "form": form,
            "report": report,
            "previous": chargeback.previous_month(month),
            "next": chargeback.next_month(month),
            "history": selectors.chargeback_history(month),
            "can_close": permissions.can_close_chargeback_month(request.user),
            "month_ended": month < chargeback.month_start(timezone.now().date()),
            "close_form": ChargebackCloseForm(),
            "reopen_form": ChargebackReopenForm(),
        },
        status=400 if form.errors else 200,
    )


def _back(month: date):
    return redirect(f"{reverse('chargeback')}?month={month:%Y-%m}")


@require_POST
@role_required(permissions.can_close_chargeback_month, CLOSERS)
def chargeback_close(request, month: str):
    when = _parse_month(month)
    form = ChargebackCloseForm(request.POST)
    if form.is_valid():
        try:
            chargeback.chargeback_month_close(actor=request.user, month=when, note=form.cleaned_data["note"])
            messages.success(request, f"{when:%B %Y} is closed: its figures are frozen.")
        except (ValidationError, InvalidTransition) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    return _back(when)


@require_POST
@role_required(permissions.can_close_chargeback_month, CLOSERS)
def chargeback_reopen(request, month: str):
    when = _parse_month(month)
    form = ChargebackReopenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the month is reopened.")
        return _back(when)
    try:
        chargeback.chargeback_month_reopen(actor=request.user, month=when, reason=form.cleaned_data["reason"])
        messages.success(request, f"{when:%B %Y} is open again: its figures follow the ledger until it is closed.")
    except (ValidationError, InvalidTransition) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    return _back(when)


def _parse_month(value: str) -> date:
    form = MonthForm({"month": value})
    if not form.is_valid() or form.cleaned_data["month"] is None:
        raise Http404("No such month.")
    return form.cleaned_data["month"]
