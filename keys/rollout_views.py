"""Rollout pages: the list (with the rollouts waiting for my decision), asking for one, its page (who has
revealed and used their key), deciding it and revoking it."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from budgets import selectors as budget_selectors
from govsite.accounts import permissions
from govsite.accounts.mfa import second_factor_required
from govsite.web import login_required, paginate, role_required, run_service
from keys import selectors, services
from keys.forms import DecisionForm, RolloutForm, RolloutRevokeForm


@login_required
def rollout_list(request):
    return render(
        request,
        "keys/rollout_list.html",
        {
            "queue": selectors.rollout_queue(user=request.user),
            "rollouts": paginate(request, selectors.rollouts_visible(user=request.user)),
            "can_request": permissions.can_request_any_rollout(request.user),
        },
    )


@role_required(permissions.can_request_any_rollout, "Rollouts are asked for by a team's approvers or an admin.")
def rollout_create(request):
    form = RolloutForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        ok, rollout = run_service(
            form, lambda: services.rollout_create(requester=request.user, data=form.rollout_input)
        )
        if ok:
            messages.success(
                request, f"Rollout #{rollout.pk} sent; another approver of the team or an admin decides it."
            )
            return redirect("rollout_detail", pk=rollout.pk)
    return render(request, "keys/rollout_form.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def rollout_detail(request, pk):
    rollout = get_object_or_404(selectors.rollouts_visible(user=request.user), pk=pk)
    members = paginate(request, selectors.rollout_members(rollout=rollout), per_page=100)
    rows = []
    for member in members:
        keys = list(member.key_request.keys.all()) if member.key_request else []
        rows.append({"member": member, "key": keys[0] if keys else None})
    usage = budget_selectors.key_usage(key_ids=[row["key"].pk for row in rows if row["key"]])
    for row in rows:
        row["usage"] = usage.get(row["key"].pk) if row["key"] else None
    counts = selectors.rollout_key_counts(rollout=rollout)
    counts["used"] = len(
        budget_selectors.key_usage(key_ids=list(selectors.rollout_keys(rollout=rollout).values_list("pk", flat=True)))
    )
    return render(
        request,
        "keys/rollout_detail.html",
        {
            "rollout": rollout,
            "members": members,
            "rows": rows,
            "counts": counts,
            "approvals": rollout.approvals.select_related("approver"),
            "can_decide": permissions.can_decide_rollout(request.user, rollout)
            and permissions.rollout_decide_refusal(rollout) is None,
            "can_revoke": permissions.can_revoke_rollout(request.user, rollout)
            and permissions.rollout_revoke_refusal(rollout) is None,
            "decision_form": DecisionForm(),
        },
    )


@require_POST
@role_required(permissions.has_key_approval_queue, "Only a team's approvers or an admin decide rollouts.")
@second_factor_required
def rollout_decide(request, pk):
    rollout = get_object_or_404(selectors.rollouts_visible(user=request.user), pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
        return redirect("rollout_detail", pk=pk)
    note = form.cleaned_data["note"]
    try:
        if form.cleaned_data["decision"] == "approve":
            made = services.rollout_approve(rollout=rollout, approver=request.user, note=note)
            if made is None:
                messages.success(
                    request, f"Approval recorded for rollout #{pk}; a restricted model needs an admin's too."
                )
            else:
                messages.success(request, f"Rollout #{pk} approved: {made} keys are being made.")
        else:
            services.rollout_reject(rollout=rollout, approver=request.user, note=note)
            messages.success(request, f"Rollout #{pk} rejected.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect("rollout_detail", pk=pk)


@role_required(permissions.has_key_approval_queue, "Only a team's approvers or an admin revoke rollouts.")
def rollout_revoke(request, pk):
    rollout = get_object_or_404(selectors.rollouts_visible(user=request.user), pk=pk)
    permissions.require_can_revoke_rollout(request.user, rollout)
    form = RolloutRevokeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            revoked = services.rollout_revoke(rollout=rollout, actor=request.user, reason=form.cleaned_data["reason"])
        except services.InvalidTransition as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Rollout #{pk} revoked: {revoked} keys are being deleted at the gateway.")
        return redirect("rollout_detail", pk=pk)
    counts = selectors.rollout_key_counts(rollout=rollout)
    return render(request, "keys/rollout_revoke.html", {"rollout": rollout, "form": form, "counts": counts})
