from django.http import JsonResponse
from django.shortcuts import render

from govsite.accounts import selectors
from govsite.web import login_required


@login_required
def home(request):
    return render(
        request,
        "home.html",
        {
            "memberships": selectors.my_teams(user=request.user),
            "keys": [],
            "pending_approvals": [],
        },
    )


def healthz(request):
    return JsonResponse({"status": "ok"})
