"""One error shape for the whole API, naming the field:

    {"error": {"code": "validation_error", "message": "...", "fields": {"monthly_budget": ["..."]}}}

The services speak Django (ValidationError with an error_dict, PermissionDenied) and
govsite.errors.InvalidTransition; this handler turns each into the same JSON, so views never catch anything.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from govsite.errors import InvalidTransition

CODES = {
    400: "validation_error",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
}
MAX_BODY_BYTES = 1024 * 1024


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The request body is over {MAX_BODY_BYTES} bytes."
    default_code = "too_large"


class SecondFactorRequired(exceptions.APIException):
    """A browser session's call to a guarded operation when its second factor is too old (or not enrolled)."""

    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "Confirm your second factor in the browser first (it was given too long ago)."
    default_code = "second_factor_required"


def body(status_code: int, message: str, fields: dict | None = None, code: str | None = None) -> dict:
    error = {"code": code or CODES.get(status_code, "error"), "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """Field errors as {"field": ["message", ...]}; nested ones by dotted path ("thresholds.0")."""
    out: dict[str, list[str]] = {}
    name = prefix.rstrip(".") or "non_field_errors"
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = "non_field_errors" if key == NON_FIELD_ERRORS else str(key)
            for field, messages in flatten(value, f"{prefix}{key}.").items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in detail):
            out.setdefault(name, []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    for field, messages in flatten(item, f"{prefix}{index}.").items():
                        out.setdefault(field, []).extend(messages)
    else:
        out.setdefault(name, []).append(str(detail))
    return out


def _invalid(fields: dict[str, list[str]]) -> Response:
    names = [name for name in fields if name != "non_field_errors"]
    message = f"Check {', '.join(names)}." if names else "The request is not valid."
    return Response(body(400, message, fields), status=400)


def exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        return _invalid(flatten(exc.message_dict if hasattr(exc, "error_dict") else exc.messages))
    if isinstance(exc, InvalidTransition):
        return Response(body(409, str(exc)), status=409)
    if isinstance(exc, PermissionDenied):
        return Response(body(403, str(exc) or "You do not have permission to do that."), status=403)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return Response(body(404, "Not found."), status=404)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling (and logging) takes it from here
    if isinstance(exc, exceptions.ValidationError):
        return _invalid(flatten(exc.detail))
    code = response.status_code
    if code == 403 and isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code = response.status_code = 401  # a call with no credentials is 401, whatever the authenticator
    if code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="govsite-api"'
    error_code = "parse_error" if isinstance(exc, exceptions.ParseError) else None
    if isinstance(exc, SecondFactorRequired):
        error_code = SecondFactorRequired.default_code
    response.data = body(code, str(getattr(exc, "detail", exc)), code=error_code)
    return response


@csrf_exempt  # it reads nothing and changes nothing, whatever the method: a POST gets the same JSON 404
def not_found(request, *args, **kwargs):
    """Any /api/v1/ address that names no endpoint: a JSON 404 like the rest of the API, not the HTML page."""
    return JsonResponse(body(404, "No API endpoint at this address."), status=404)
