"""Evidence exports over the API (admins and auditors): start one, follow its status, download the ZIP.
The same services and selectors as the auditor workspace (audit/views.py)."""

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from audit import selectors, services
from audit.models import EvidenceExport
from govsite.accounts import permissions
from govsite.accounts.models import Team
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

TAG = ["evidence"]
EXPORTERS = "Only admins and auditors export evidence."


class EvidenceExportOutput(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    filters = serializers.DictField(read_only=True, help_text="Teams, sample size and seed of the bundle.")
    row_counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    download_name = serializers.CharField(read_only=True)

    class Meta:
        ref_name = "EvidenceExport"
        model = EvidenceExport
        fields = [
            "id",
            "status",
            "progress",
            "step",
            "period_start",
            "period_end",
            "filters",
            "requested_by",
            "row_counts",
            "failed_checks",
            "chain_ok",
            "file_size",
            "sha256",
            "manifest_sha256",
            "download_name",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class EvidenceExportListCreateApi(ApiView):
    second_factor_methods = ("POST",)  # the pages' step-up, for session calls

    class Input(StrictSerializer):
        class Meta:
            ref_name = "EvidenceExportInput"

        period_start = serializers.DateField(help_text="First day (UTC), inclusive.")
        period_end = serializers.DateField(help_text="Last day (UTC), inclusive; today at the latest.")
        teams = serializers.SlugRelatedField(
            slug_field="slug",
            queryset=Team.objects.all(),
            many=True,
            required=False,
            default=list,
            help_text="Team slugs; empty: every team (the audit-log extract always covers everything).",
        )
        sample_size = serializers.IntegerField(
            required=False, allow_null=True, default=None, min_value=0, max_value=1000, help_text="Keys to sample."
        )
        sample_seed = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")

    @extend_schema(
        operation_id="evidence_exports_list",
        summary="Evidence exports (admins and auditors)",
        tags=TAG,
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(EvidenceExportOutput), **errors(*READ_ERRORS)},
    )
    def get(self, request):
        permissions.require(permissions.can_export_evidence(request.user), EXPORTERS)
        return paginated_response(self, selectors.evidence_exports(user=request.user), EvidenceExportOutput)

    @extend_schema(
        operation_id="evidence_exports_start",
        summary="Start an evidence export",
        description="A job builds the bundle; follow `status` and `progress`, then download it.",
        tags=TAG,
        request=Input,
        responses={202: EvidenceExportOutput, **errors(*WRITE_ERRORS)},
    )
    def post(self, request):
        permissions.require(permissions.can_export_evidence(request.user), EXPORTERS)
        data = validated(self.Input, request.data)
        export = services.evidence_export_start(actor=request.user, **data)
        return Response(EvidenceExportOutput(export).data, status=202)


class EvidenceExportDetailApi(ApiView):
    @extend_schema(
        operation_id="evidence_exports_retrieve",
        summary="An evidence export's status",
        tags=TAG,
        responses={200: EvidenceExportOutput, **errors(404)},
    )
    def get(self, request, pk):
        permissions.require(permissions.can_export_evidence(request.user), EXPORTERS)
        return Response(
            EvidenceExportOutput(get_object_or_404(selectors.evidence_exports(user=request.user), pk=pk)).data
        )


class EvidenceExportDownloadApi(ApiView):
    second_factor_methods = ("GET",)  # the pages' step-up, for session calls

    @extend_schema(
        operation_id="evidence_exports_download",
        summary="Download an evidence bundle (ZIP)",
        description="Audited (`evidence.downloaded`). 409 while the export is queued, running or failed.",
        tags=TAG,
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The bundle."),
            **errors(404, 409),
        },
    )
    def get(self, request, pk):
        permissions.require(permissions.can_export_evidence(request.user), EXPORTERS)
        export = get_object_or_404(selectors.evidence_exports(user=request.user), pk=pk)
        path = services.export_file(export)
        if path is None:
            if export.status != EvidenceExport.Status.DONE:
                status = export.get_status_display().lower()
                raise InvalidTransition(status, "download", f"Export #{export.pk} is {status}.")
            raise Http404("This export has no file to download.")
        services.evidence_export_downloaded(actor=request.user, export=export)
        return FileResponse(
            path.open("rb"), as_attachment=True, filename=export.download_name, content_type="application/zip"
        )
