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
    sections = needs_me.inbox(user=request.user, limit=20)
    request.inbox_count = needs_me.waiting_in(sections, user=request.user)  # the navigation's count, read once
    return render(request, "inbox.html", {"sections": sections})


@login_required
def home(request):
    sections = needs_me.inbox(user=request.user, limit=5)
    request.inbox_count = needs_me.waiting_in(sections, user=request.user)
    return render(
        request,
        "home.html",
        {
            "sections": sections,
            "memberships": selectors.my_teams(user=request.user),
            "keys": key_selectors.my_keys(user=request.user).exclude(status__in=["revoked", "expired"])[:10],
            "can_request": permissions.can_request_any_key(request.user),
            "notices": budget_selectors.notices_unread(user=request.user),
            "spend": costs.home_summary(user=request.user, today=timezone.now().date()),
        },
    )


def healthz(request):
    return JsonResponse({"status": "ok"})
