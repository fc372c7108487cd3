"""Small helpers shared by the site's views: role guards, service errors onto forms, paging, the client's
address."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache, wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator


def role_required(allowed: Callable, message: str = "You do not have permission to see this page."):
    """Login first (anonymous → login page), then the role check from permissions/ (→ 403)."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not allowed(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def run_service(form, call: Callable):
    """Call a service; its ValidationError becomes the form's field errors. Returns (ok, result)."""
    try:
        return True, call()
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc)
        return False, None


def paginate(request, queryset, per_page: int = 50):
    paginator = Paginator(queryset, per_page)
    return paginator.get_page(request.GET.get("page"))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A cell of a CSV download: text starting like a formula (a key alias, a team name) would run in a
    spreadsheet, so it is quoted; numbers stay numbers."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


__all__ = ["PermissionDenied", "csv_cell", "login_required", "paginate", "role_required", "run_service"]


# --- the client's address ------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in trusted)


def _ip(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(raw.strip())
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The address the request came from: REMOTE_ADDR, unless that is a proxy named in TRUSTED_PROXIES;
    then X-Forwarded-For is read from the right (each trusted proxy appends the address it saw) and the
    first address that is not a trusted proxy is the client. Anything left of it is the client's own
    claim and never believed, so nobody picks the address their failed logins or audit events count under."""
    networks = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
    address = _ip(request.META.get("REMOTE_ADDR", ""))
    if address is None:
        return None

    def trusted(ip) -> bool:
        return any(ip in network for network in networks)

    if trusted(address):
        for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
            hop_ip = _ip(hop)
            if hop_ip is None:
                break  # a malformed hop: keep the last address a trusted proxy vouched for
            address = hop_ip
            if not trusted(hop_ip):
                break
    return str(address)
