"""FinOps over the API: FOCUS exports (admins, finance, auditors: start one, follow its progress, download the
file) and the month-end chargeback (read; finance and admins close and reopen a month). The same services and
selectors as the pages (budgets/finops/views.py)."""

from __future__ import annotations

from datetime import date

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from budgets.finops import chargeback, exports, selectors
from budgets.models import FocusExport, FocusFormat
from govsite.accounts import permissions
from govsite.api.common import (
    PAGE_PARAMETERS,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiView,
    StrictSerializer,
    errors,
    paginated,
    paginated_response,
    validated,
)
from govsite.errors import InvalidTransition

TAG = ["finops"]
EXPORTERS = "Only admins, finance and auditors export FOCUS files."
READERS = "Only admins, finance and auditors see the chargeback."
CLOSERS = "Only finance and admins close or reopen a month."


class FocusExportOutput(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    progress = serializers.IntegerField(read_only=True, help_text="Percent of the period's ledger rows read.")
    effective_cost = serializers.DecimalField(max_digits=22, decimal_places=9, read_only=True, allow_null=True)

    class Meta:
        ref_name = "FocusExport"
        model = FocusExport
        fields = [
            "id",
            "status",
            "progress",
            "period_start",
            "period_end",
            "format",
            "strict",
            "requested_by",
            "schedule",
            "attempts",
            "error",
            "ledger_rows",
            "ledger_rows_done",
            "focus_rows",
            "effective_cost",
            "unpriced_rows",
            "unpriced_left_out",
            "size",
            "sha256",
            "delivered_to",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class FocusExportListCreateApi(ApiView):
    class Input(StrictSerializer):
        class Meta:
            ref_name = "FocusExportInput"

        period_start = serializers.DateField(help_text="First day (UTC), inclusive.")
        period_end = serializers.DateField(help_text="Last day (UTC), inclusive; today at the latest.")
        format = serializers.ChoiceField(choices=FocusFormat.choices, default=FocusFormat.PARQUET)
        strict = serializers.BooleanField(
            default=False, help_text="Leave unpriced rows out (FOCUS requires a cost on every row)."
        )

    @extend_schema(
        operation_id="focus_exports_list",
        summary="FOCUS exports (admins, finance, auditors)",
        tags=TAG,
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(FocusExportOutput), **errors(*READ_ERRORS)},
    )
    def get(self, request):
        permissions.require(permissions.can_export_focus(request.user), EXPORTERS)
        return paginated_response(self, selectors.focus_exports_visible(user=request.user), FocusExportOutput)

    @extend_schema(
        operation_id="focus_exports_start",
        summary="Start a FOCUS 1.2 export of the ledger",
        description="A job writes the file a batch at a time; follow `status` and `progress`, then download it.",
        tags=TAG,
        request=Input,
        responses={202: FocusExportOutput, **errors(*WRITE_ERRORS)},
    )
    def post(self, request):
        permissions.require(permissions.can_export_focus(request.user), EXPORTERS)
        data = validated(self.Input, request.data)
        export = exports.focus_export_start(
            actor=request.user,
            period_start=data["period_start"],
            period_end=data["period_end"],
            fmt=data["format"],
            strict=data["strict"],
        )
        return Response(FocusExportOutput(export).data, status=202)


class FocusExportDetailApi(ApiView):
    @extend_schema(
        operation_id="focus_exports_retrieve",
        summary="A FOCUS export's status and progress",
        tags=TAG,
        responses={200: FocusExportOutput, **errors(404)},
    )
    def get(self, request, pk):
        permissions.require(permissions.can_export_focus(request.user), EXPORTERS)
        export = get_object_or_404(selectors.focus_exports_visible(user=request.user), pk=pk)
        return Response(FocusExportOutput(export).data)


class FocusExportDownloadApi(ApiView):
    @extend_schema(
        operation_id="focus_exports_download",
        summary="Download a FOCUS file (CSV or Parquet)",
        description="409 while the export is queued, running or failed.",
        tags=TAG,
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file."),
            **errors(404, 409),
        },
    )
    def get(self, request, pk):
        permissions.require(permissions.can_export_focus(request.user), EXPORTERS)
        export = get_object_or_404(selectors.focus_exports_visible(user=request.user), pk=pk)
        path = exports.focus_export_file(export)
        if path is None:
            if export.status != FocusExport.Status.DONE:
                status = export.get_status_display().lower()
                raise InvalidTransition(status, "download", f"Export #{export.pk} is {status}.")
            raise Http404("This export has no file to download.")
        return FileResponse(
            path.open("rb"), as_attachment=True, filename=path.name, content_type="application/octet-stream"
        )


# --- chargeback ------------------------------------------------------------------------------------------------


class FiguresOutput(serializers.Serializer):
    cost = serializers.DecimalField(max_digits=22, decimal_places=9)
    requests = serializers.IntegerField()
    unpriced = serializers.IntegerField(help_text="Requests without a price (no cost, never $0).")
    flat_rate = serializers.IntegerField(help_text="Requests of flat-rate models (cost 0).")


class ChargebackLineOutput(serializers.Serializer):
    team_id = serializers.IntegerField(allow_null=True)
    team_name = serializers.CharField()
    cost_centre = serializers.CharField()
    month = FiguresOutput()
    previous = FiguresOutput()
    adjustment = FiguresOutput(help_text="Late rows of the month before, booked after it was closed.")
    change = serializers.DecimalField(max_digits=22, decimal_places=9)
    change_percent = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)


class ChargebackOutput(serializers.Serializer):
    month = serializers.DateField()
    closed = serializers.BooleanField(source="is_closed")
    closed_at = serializers.DateTimeField(source="close.closed_at", allow_null=True, default=None)
    lines = ChargebackLineOutput(many=True)
    centres = ChargebackLineOutput(many=True)
    total = ChargebackLineOutput()


MONTH_PATTERN = r"^2\d{3}-(0[1-9]|1[0-2])$"
MONTH = OpenApiParameter(
    "month", str, OpenApiParameter.PATH, required=True, pattern=MONTH_PATTERN, description="YYYY-MM"
)


class _MonthInput(StrictSerializer):
    month = serializers.RegexField(
        MONTH_PATTERN,
        help_text="YYYY-MM (2000-01 to 2999-12)",
        error_messages={"invalid": "Give a month as YYYY-MM."},
    )


def _month(value: str) -> date:
    data = validated(_MonthInput, {"month": value})
    year, month = data["month"].split("-")
    return date(int(year), int(month), 1)


class ChargebackApi(ApiView):
    @extend_schema(
        operation_id="chargeback_retrieve",
        parameters=[MONTH],
        summary="A month's chargeback per cost centre and team",
        tags=TAG,
        responses={200: ChargebackOutput, **errors(*READ_ERRORS)},
    )
    def get(self, request, month):
        permissions.require(permissions.can_view_chargeback(request.user), READERS)
        return Response(ChargebackOutput(chargeback.chargeback_report(month=_month(month))).data)


class ChargebackCloseApi(ApiView):
    class Input(StrictSerializer):
        class Meta:
            ref_name = "ChargebackCloseInput"

        note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    @extend_schema(
        operation_id="chargeback_close",
        parameters=[MONTH],
        summary="Close a month: freeze its figures (finance, admins)",
        tags=TAG,
        request=Input,
        responses={200: ChargebackOutput, **errors(*WRITE_ERRORS)},
    )
    def post(self, request, month):
        permissions.require(permissions.can_close_chargeback_month(request.user), CLOSERS)
        when = _month(month)
        data = validated(self.Input, request.data)
        chargeback.chargeback_month_close(actor=request.user, month=when, note=data["note"])
        return Response(ChargebackOutput(chargeback.chargeback_report(month=when)).data)


class ChargebackReopenApi(ApiView):
    class Input(StrictSerializer):
        class Meta:
            ref_name = "ChargebackReopenInput"

        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        operation_id="chargeback_reopen",
        parameters=[MONTH],
        summary="Reopen a closed month (finance, admins)",
        tags=TAG,
        request=Input,
        responses={200: ChargebackOutput, **errors(*WRITE_ERRORS)},
    )
    def post(self, request, month):
        permissions.require(permissions.can_close_chargeback_month(request.user), CLOSERS)
        when = _month(month)
        data = validated(self.Input, request.data)
        chargeback.chargeback_month_reopen(actor=request.user, month=when, reason=data["reason"])
        return Response(ChargebackOutput(chargeback.chargeback_report(month=when)).data)
