"""SCIM responses and the SCIM error (RFC 7644 §3.12): every answer under /scim/v2/ is made here."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, JsonResponse

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
CONTENT_TYPE = "application/scim+json"


class ScimError(Exception):
    """An error answered with the SCIM error body."""

    def __init__(self, status: int, detail: str, scim_type: str = "", **headers: str):
        self.status, self.detail, self.scim_type, self.headers = status, detail, scim_type, headers
        super().__init__(detail)

    def response(self) -> JsonResponse:
        return error_response(self.status, self.detail, self.scim_type, **self.headers)


def scim_response(data: dict, status: int = 200, **headers: str) -> JsonResponse:
    response = JsonResponse(data, status=status, content_type=CONTENT_TYPE)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def no_content() -> HttpResponse:
    """204: no body at all (RFC 9110 §15.3.5). A body here would be read as the start of the next response
    on a kept-alive connection."""
    response = HttpResponse(status=204)
    del response["Content-Type"]
    return response


def error_response(status: int, detail: str, scim_type: str = "", **headers: str) -> JsonResponse:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return scim_response(body, status=status, **headers)
