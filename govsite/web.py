"""Small helpers shared by the site's views: role guards, service errors onto forms, paging."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

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


__all__ = ["PermissionDenied", "login_required", "paginate", "role_required", "run_service"]
