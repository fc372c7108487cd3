"""What every API view shares: authentication, body limits, strict input, paging and the documented errors."""

from __future__ import annotations

import functools
import json

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import parsers, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ParseError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from govsite.api.auth import ApiTokenAuthentication, SecondFactorRecent, TokenScopeAllows
from govsite.api.errors import MAX_BODY_BYTES, PayloadTooLarge

PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_INT = 2_147_483_647  # the database's integer columns


class LimitedJSONParser(parsers.JSONParser):
    """JSON only, and at most 1 MB of it, whatever Content-Length claims (chunked bodies too)."""

    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            return {}
        raw = stream.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        if not raw.strip():
            return {}
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from exc
        unstorable = _unstorable_text(data)
        if unstorable is not None:
            raise serializers.ValidationError(
                {unstorable or "non_field_errors": ["Text may not hold a NUL character or a lone UTF-16 surrogate."]}
            )
        return data


def _unstorable_text(value, path: str = "") -> str | None:
    """The dotted path of the first string (or key) PostgreSQL cannot store or the answer cannot encode: a NUL
    character, or a `\\ud800`-style escape with no pair (valid JSON, but no character). None when all is well."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _unstorable_text(key) is not None:
            return path or "non_field_errors"
        found = _unstorable_text(item, here)
        if found is not None:
            return found
    return None


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


# The base of every endpoint: token or session, JSON in and out, bodies up to 1 MB. (A comment, not a
# docstring: the schema would show it as every operation's description.)
class ApiView(APIView):
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, TokenScopeAllows, SecondFactorRecent]
    # Methods that, from a browser session, ask for a recent second factor (auth.SecondFactorRecent).
    second_factor_methods: tuple[str, ...] = ()
    parser_classes = [LimitedJSONParser]
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        # Whatever the Accept header asks for, the answer is JSON (never a 406 the schema would not describe).
        return super().perform_content_negotiation(request, force=True)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge()


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error that names them, not silently ignored; reported together with the other
    fields' errors, so one answer lists everything to fix."""

    def to_internal_value(self, data):
        unknown = {}
        if isinstance(data, dict):
            unknown = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


def validated(serializer_class, data, **context) -> dict:
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- paging --------------------------------------------------------------------------------------


class PageInput(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)


class Pagination(PageNumberPagination):
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


def paginated_response(view: APIView, queryset, output_class, *, context=None) -> Response:
    """One page of `queryset` as {count, next, previous, results}; a bad page number or size is a 400.

    `context` is the serializer's context, or a function of the page's objects that returns it."""
    validated(PageInput, {k: view.request.query_params[k] for k in ("page", "page_size") if k in view.request.GET})
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    context = context(page) if callable(context) else context or {}
    return paginator.get_paginated_response(output_class(page, many=True, context=context).data)


PAGE_PARAMETERS = [
    OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="Page number, from 1."),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1},
        description=f"Items per page (default {PAGE_SIZE}); larger values are capped at {MAX_PAGE_SIZE}.",
    ),
]


@functools.cache
def paginated(output_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a page of `output_class` (what `paginated_response` returns)."""
    meta = getattr(output_class, "Meta", None)
    name = getattr(meta, "ref_name", None) or output_class.__name__.removesuffix("Output")
    return type(
        f"{name}Page",
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": output_class(many=True),
        },
    )


# --- documented errors ----------------------------------------------------------------------------


class ApiErrorDetail(serializers.Serializer):
    code = serializers.CharField(
        help_text="validation_error, parse_error, not_authenticated, permission_denied, not_found, "
        "method_not_allowed, conflict, too_large, unsupported_media_type, second_factor_required (a browser "
        "session whose second factor is too old, MFA_REQUIRED), second_factor_enrolment_required"
    )
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For a 400: each field in error (dotted for nested ones) and what is wrong with it.",
    )


class ApiError(serializers.Serializer):
    error = ApiErrorDetail()


ERROR_DESCRIPTIONS = {
    400: "Invalid input: `fields` names each field in error (unknown fields too).",
    401: "No valid credentials: sign in, or send `Authorization: Bearer gst_...`.",
    403: "Authenticated, but this person (or this read-only token) may not do this.",
    404: "No such object within what this person may see.",
    409: "The object is not in a state that allows this (e.g. already decided).",
    413: f"The body is over {MAX_BODY_BYTES} bytes.",
    415: "Bodies are JSON (`Content-Type: application/json`).",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error responses of an operation; 401 and 403 are always possible."""
    wanted = sorted({401, 403, *codes})
    return {code: OpenApiResponse(ApiError, description=ERROR_DESCRIPTIONS[code]) for code in wanted}


READ_ERRORS = (400, 404)
WRITE_ERRORS = (400, 404, 409, 413, 415)
