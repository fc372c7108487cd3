import re
import uuid

from audit import context
from govsite.web import client_ip


class RequestContextMiddleware:
    """Gives every request an id and makes ip / user agent / id available to audit.record."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # A caller's id is kept for correlation, but only in a safe shape.
        request_id = re.sub(r"[^A-Za-z0-9._-]", "", request.headers.get("X-Request-ID", ""))[:64] or uuid.uuid4().hex
        request.request_id = request_id
        token = context.bind(
            context.RequestContext(
                ip=client_ip(request),  # X-Forwarded-For only from TRUSTED_PROXIES
                user_agent=request.headers.get("User-Agent", "")[:400],
                request_id=request_id,
            )
        )
        try:
            response = self.get_response(request)
        finally:
            context.reset(token)
        response["X-Request-ID"] = request_id
        return response
