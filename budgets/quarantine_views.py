"""The quarantine of spend rows the ledger could not book: admins retry or discard, auditors read."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from budgets import partitions, quarantine, services
from budgets.models import QuarantinedRow
from govsite.accounts import permissions
from govsite.web import paginate, role_required

VIEW_MESSAGE = "Only admins, finance and auditors see the quarantined spend rows."
ACT_MESSAGE = "Only admins retry or discard quarantined spend rows."


class RetryForm(forms.Form):
    raw = forms.CharField(required=False, max_length=quarantine.MAX_RAW_CHARS, widget=forms.Textarea)


class DiscardForm(forms.Form):
    note = forms.CharField(required=False, max_length=500)


@role_required(permissions.can_view_reconciliation, VIEW_MESSAGE)
def quarantine_list(request):
    status = request.GET.get("status", QuarantinedRow.Status.HELD)
    if status not in QuarantinedRow.Status.values:
        status = QuarantinedRow.Status.HELD
    counts = quarantine.quarantine_counts()
    return render(
        request,
        "budgets/quarantine_list.html",
        {
            "page": paginate(request, quarantine.quarantine_list(user=request.user, status=status), per_page=50),
            "status": status,
            "statuses": [(value, label, counts.get(value, 0)) for value, label in QuarantinedRow.Status.choices],
            "can_act": permissions.can_manage_ingest(request.user),
            # Booked rows whose month had no ledger partition yet (PostgreSQL): counted, not lost.
            "default_partition": partitions.default_partition_months(),
        },
    )


@role_required(permissions.can_view_reconciliation, VIEW_MESSAGE)
def quarantine_detail(request, pk):
    row = get_object_or_404(QuarantinedRow, pk=pk)
    return render(
        request,
        "budgets/quarantine_detail.html",
        {
            "row": row,
            "form": RetryForm(initial={"raw": row.raw}),
            "can_act": permissions.can_manage_ingest(request.user),
        },
    )


@require_POST
@role_required(permissions.can_manage_ingest, ACT_MESSAGE)
def quarantine_retry(request, pk):
    row = get_object_or_404(QuarantinedRow, pk=pk)
    form = RetryForm(request.POST)
    raw = form.cleaned_data["raw"] if form.is_valid() and form.cleaned_data["raw"] else None
    try:
        services.quarantined_row_retry(row=row, actor=request.user, raw=raw)
    except (ValidationError, services.InvalidTransition) as exc:
        messages.error(request, "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
        return redirect("quarantine_detail", pk=row.pk)
    messages.success(request, "The row is booked in the ledger.")
    return redirect("quarantine_list")


@require_POST
@role_required(permissions.can_manage_ingest, ACT_MESSAGE)
def quarantine_discard(request, pk):
    row = get_object_or_404(QuarantinedRow, pk=pk)
    form = DiscardForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        services.quarantined_row_discard(row=row, actor=request.user, note=note)
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
        return redirect("quarantine_detail", pk=row.pk)
    messages.success(request, "The row is discarded; it is kept here, marked discarded.")
    return redirect("quarantine_list")
