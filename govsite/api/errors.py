"""One error shape for the whole API: {"error": {"code", "message", "fields"?}}, naming the field."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from keys.services import InvalidTransition

CODES = {
    400: "validation_error",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def _body(code: int, message: str, fields: dict | None = None) -> dict:
    error = {"code": CODES.get(code, "error"), "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(_body(400, "The request is not valid.", fields), status=400)
    if isinstance(exc, InvalidTransition):
        return Response(_body(409, str(exc)), status=409)
    if isinstance(exc, PermissionDenied | exceptions.PermissionDenied):
        return Response(_body(403, str(exc) or "You do not have permission to do that."), status=403)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return Response(_body(404, "Not found."), status=404)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = _body(400, "The request is not valid.", detail)
    else:
        code = response.status_code
        if code == status.HTTP_403_FORBIDDEN and isinstance(exc, exceptions.NotAuthenticated):
            code = 401
            response.status_code = 401
            response["WWW-Authenticate"] = 'Session realm="govsite"'
        response.data = _body(code, str(getattr(exc, "detail", exc)))
    return response
