from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

from adoption import costs
from budgets import selectors as budget_selectors
from govsite.accounts import selectors
from govsite.web import login_required
from keys import selectors as key_selectors


@login_required
def home(request):
    return render(
        request,
        "home.html",
        {
            "memberships": selectors.my_teams(user=request.user),
            "keys": key_selectors.my_keys(user=request.user).exclude(status__in=["revoked", "expired"])[:10],
            "pending_approvals": key_selectors.key_request_queue(user=request.user)[:10],
            "notices": budget_selectors.notices_unread(user=request.user),
            "spend": costs.home_summary(user=request.user, today=timezone.now().date()),
        },
    )


def healthz(request):
    return JsonResponse({"status": "ok"})
