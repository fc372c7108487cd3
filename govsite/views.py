from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

from adoption import costs
from budgets import selectors as budget_selectors
from govsite import inbox as needs_me
from govsite.accounts import permissions, selectors
from govsite.web import login_required
from keys import selectors as key_selectors


@login_required
def inbox(request):
    """Needs me: everything waiting for this person, each linked to where it is decided."""
    box = needs_me.inbox(user=request.user, limit=20)
    request.navigation_counts = box.navigation_counts  # read with the sections, not counted again
    return render(request, "inbox.html", {"sections": box.sections})


@login_required
def home(request):
    box = needs_me.inbox(user=request.user, limit=5)
    request.navigation_counts = box.navigation_counts
    return render(
        request,
        "home.html",
        {
            "sections": box.sections,
            "memberships": selectors.my_teams(user=request.user),
            "keys": key_selectors.my_keys(user=request.user).exclude(status__in=["revoked", "expired"])[:10],
            "can_request": permissions.can_request_any_key(request.user),
            "notices": budget_selectors.notices_unread(user=request.user),
            "spend": costs.home_summary(user=request.user, today=timezone.now().date()),
        },
    )


def healthz(request):
    return JsonResponse({"status": "ok"})
