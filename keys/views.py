import csv
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from budgets import key_usage
from budgets import selectors as budget_selectors
from govsite.accounts import permissions
from govsite.accounts.mfa import second_factor_required
from govsite.accounts.models import Team
from govsite.web import csv_cell, login_required, paginate, role_required, run_service
from keys import selectors, services
from keys.forms import (
    AdoptForm,
    BulkDecisionForm,
    ClassificationLabelForm,
    ConfirmForm,
    DecisionForm,
    KeyRequestForm,
    ModelPolicyForm,
    ReassignForm,
    TeamKeyPolicyForm,
)
from keys.models import DataClassification, GatewayCommand, KeyRequest, ModelPolicy, UnmanagedKey, VirtualKey

# --- requests -------------------------------------------------------------------------------------------


KEY_STATUSES = VirtualKey.Status.choices
KEY_CSV_COLUMNS = [
    "alias", "name", "owner", "team", "kind", "status", "spend_this_month", "monthly_budget", "budget_used_percent",
    "requests_last_7_days", "last_request", "models", "expires",
]  # fmt: skip


def _key_csv(keys, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = csv.writer(response)
    writer.writerow(KEY_CSV_COLUMNS)
    for k in keys.iterator(chunk_size=500):
        used = "" if k.budget_used is None else f"{k.budget_used * 100:.1f}"
        writer.writerow(
            [
                csv_cell(value)
                for value in (
                    k.alias, k.display_name, k.owner.email, k.team.name, k.kind, k.status,
                    f"{k.spend_period:.2f}", k.max_budget, used, k.requests_recent,
                    k.last_request_at.isoformat() if k.last_request_at else "",
                    " ".join(k.allowed_models), k.expires_at.isoformat(),
                )
            ]
        )  # fmt: skip
    return response


@login_required
def key_list(request):
    """My keys, my teams' keys, all keys: each with its spend this month, share of its cap used, requests in
    the last 7 days and last request; sortable, filtered by team and status, paged, and as CSV."""
    scopes = selectors.key_list_scopes(user=request.user)
    scope = request.GET.get("scope") if request.GET.get("scope") in scopes else "mine"
    status = request.GET.get("status", "") if request.GET.get("status") in VirtualKey.Status.values else ""
    team = request.GET.get("team", "")
    in_scope = selectors.key_list(user=request.user, scope=scope)
    keys = selectors.key_list(user=request.user, scope=scope, status=status, team_slug=team)
    keys, sort = key_usage.keys_sorted(
        key_usage.keys_with_usage(keys, today=timezone.now().date()), request.GET.get("sort", "")
    )
    if request.GET.get("format") == "csv":
        return _key_csv(keys, f"keys-{scope}")
    filters = {name: value for name, value in (("scope", scope), ("status", status), ("team", team)) if value}
    return render(
        request,
        "keys/key_list.html",
        {
            "scope": scope,
            "scopes": scopes,
            "page": paginate(request, keys, per_page=50),
            # The table shows each request's team, purpose and status: not its models or approvals.
            "my_requests": selectors.my_key_requests(user=request.user).prefetch_related(None)[:10]
            if scope == "mine"
            else [],
            "teams": selectors.key_list_teams(keys=in_scope),
            "statuses": KEY_STATUSES,
            "status": status,
            "team": team,
            "sort": sort,
            "filters": urlencode(filters),
            "query": urlencode({**filters, "sort": sort}),
            "can_request": permissions.can_request_any_key(request.user),
        },
    )


@role_required(
    permissions.can_request_any_key,
    "Keys are requested within a team, and you are not in one yet. Teams come from "
    "your SSO groups, or an admin adds you.",
)
def key_request_create(request):
    form = KeyRequestForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        ok, key_request = run_service(
            form, lambda: services.key_request_create(requester=request.user, data=form.request_input)
        )
        if ok:
            if key_request.status == KeyRequest.Status.APPROVED:
                messages.success(request, "Approved by your team's policy; your key is being provisioned.")
            else:
                messages.success(request, "Request sent. Your team's approvers have been told.")
            return redirect("key_request_detail", pk=key_request.pk)
    no_team = not form.fields["team"].queryset.exists()
    return render(
        request, "keys/request_form.html", {"form": form, "no_team": no_team}, status=400 if form.errors else 200
    )


@login_required
def key_request_detail(request, pk):
    key_request = get_object_or_404(selectors.key_requests_visible(user=request.user), pk=pk)
    return render(
        request,
        "keys/request_detail.html",
        {
            "kr": key_request,
            "keys": key_request.keys.all(),
            "actions": permissions.key_request_actions_for(request.user, key_request),
            "decision_form": DecisionForm(),
        },
    )


@require_POST
@login_required
def key_request_cancel(request, pk):
    key_request = get_object_or_404(selectors.key_requests_visible(user=request.user), pk=pk)
    try:
        services.key_request_cancel(request=key_request, actor=request.user)
        messages.success(request, "Request cancelled.")
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect("key_request_detail", pk=pk)


# --- approval queue ---------------------------------------------------------------------------------------


@role_required(permissions.has_key_approval_queue, "Only team approvers and admins have an approval queue.")
def approval_queue(request):
    page = paginate(request, selectors.key_request_queue(user=request.user), per_page=25)
    existing = selectors.existing_keys_by_owner(owner_ids=list({kr.owner_id for kr in page}))
    allocation = budget_selectors.team_key_allocation(team_ids=list({kr.team_id for kr in page}))
    for kr in page:
        kr.existing_keys = existing.get(kr.owner_id, [])
        kr.team_allocation = allocation[kr.team_id]
    return render(
        request,
        "keys/approval_queue.html",
        {"page": page, "awaiting_others": selectors.key_requests_awaiting_others(user=request.user)[:50]},
    )


@require_POST
@role_required(permissions.has_key_approval_queue, "Only team approvers and admins decide key requests.")
@second_factor_required
def approval_decide_bulk(request):
    """One decision and one note for the requests ticked in the queue. Each goes through the same service as a
    single decision, in its own transaction: separation of duties and second approvals hold per request, each
    gets its own audit event, and one refused request does not stop the others."""
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("approval_queue")
    decision, note = form.cleaned_data["decision"], form.cleaned_data["note"]
    queue = {kr.pk: kr for kr in selectors.key_request_queue(user=request.user).filter(pk__in=form.cleaned_data["ids"])}
    done, refused = [], []
    for pk in form.cleaned_data["ids"]:
        key_request = queue.get(pk)
        if key_request is None:
            refused.append(f"#{pk}: not in your queue any more")
            continue
        try:
            if decision == "approve":
                services.key_request_approve(request=key_request, approver=request.user, note=note)
            else:
                services.key_request_reject(request=key_request, approver=request.user, note=note)
            done.append(f"#{pk}")
        except (ValidationError, services.InvalidTransition, PermissionDenied) as exc:
            refused.append(f"#{pk}: {' '.join(getattr(exc, 'messages', [str(exc)]))}")
    if done:
        verb = "approved (or approval recorded)" if decision == "approve" else "rejected"
        messages.success(request, f"{len(done)} request{'s' if len(done) != 1 else ''} {verb}: {', '.join(done)}.")
    if refused:
        messages.error(request, "Not decided: " + "; ".join(refused))
    return redirect("approval_queue")


@require_POST
@role_required(permissions.has_key_approval_queue, "Only team approvers and admins decide key requests.")
@second_factor_required
def approval_decide(request, pk):
    key_request = get_object_or_404(selectors.key_request_queue(user=request.user), pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
        return redirect("approval_queue")
    note = form.cleaned_data["note"]
    try:
        if form.cleaned_data["decision"] == "approve":
            key = services.key_request_approve(request=key_request, approver=request.user, note=note)
            if key is None:
                messages.success(request, f"Approval recorded for #{pk}; a restricted model needs an admin's too.")
            else:
                messages.success(request, f"Request #{pk} approved; the key is being provisioned.")
        else:
            services.key_request_reject(request=key_request, approver=request.user, note=note)
            messages.success(request, f"Request #{pk} rejected.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect("approval_queue")


# --- keys -------------------------------------------------------------------------------------------------


@login_required
def key_detail(request, pk):
    key = get_object_or_404(selectors.keys_visible(user=request.user), pk=pk)
    return render(
        request,
        "keys/key_detail.html",
        {
            "key": key,
            "actions": permissions.key_actions_for(request.user, key),
            "reassign_form": ReassignForm(user=request.user, key=key),
            "rotated_to": getattr(key, "rotated_to", None),
            "usage": key_usage.key_usage(key=key, today=timezone.now().date()),
            "can_ask_cap": key.is_live and permissions.can_request_key_cap_increase(request.user, key),
            "history": selectors.key_history(key=key),
        },
    )


@never_cache
@require_POST
@login_required
def key_reveal(request, pk):
    key = get_object_or_404(selectors.keys_visible(user=request.user), pk=pk)
    try:
        secret = services.key_reveal(key=key, actor=request.user)
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
        return redirect("key_detail", pk=pk)
    base = settings.GATEWAY_PUBLIC_URL
    return render(request, "keys/key_revealed.html", {"key": key, "secret": secret, "base_url": base})


@login_required
def key_revoke(request, pk):
    key = get_object_or_404(selectors.keys_visible(user=request.user), pk=pk)
    permissions.require(permissions.can_revoke_key(request.user, key), "You cannot revoke this key.")
    form = ConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.key_revoke(key=key, actor=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, f"{key.alias} is being revoked; it stops working within moments.")
        except services.InvalidTransition as exc:
            messages.error(request, str(exc))
        return redirect("key_detail", pk=pk)
    return render(
        request,
        "keys/confirm.html",
        {
            "form": form,
            "key": key,
            "title": f"Revoke {key.alias}?",
            "body": "Every tool using this key stops working as soon as the gateway deletes it. This cannot be undone.",
            "confirm_label": "Revoke key",
            "danger": True,
        },
    )


@login_required
def key_rotate(request, pk):
    key = get_object_or_404(selectors.keys_visible(user=request.user), pk=pk)
    permissions.require(permissions.can_rotate_key(request.user, key), "You cannot rotate this key.")
    if request.method == "POST":
        try:
            new_key = services.key_rotate(key=key, actor=request.user)
            messages.success(
                request,
                f"New key {new_key.alias} is being provisioned; {key.alias} keeps working "
                f"until {key.grace_until or 'the grace period ends'}.",
            )
            return redirect("key_detail", pk=new_key.pk)
        except services.InvalidTransition as exc:
            messages.error(request, str(exc))
            return redirect("key_detail", pk=pk)
    return render(
        request,
        "keys/confirm.html",
        {
            "form": None,
            "key": key,
            "title": f"Rotate {key.alias}?",
            "body": "A new key with the same models, budget and expiry is made for the owner to reveal. "
            "The old key keeps working for a grace period (24 hours), then it is deleted.",
            "confirm_label": "Rotate key",
            "danger": False,
        },
    )


@require_POST
@login_required
def key_reassign(request, pk):
    key = get_object_or_404(selectors.keys_visible(user=request.user), pk=pk)
    form = ReassignForm(request.POST)
    if form.is_valid():
        try:
            new_key = services.key_reassign_owner(
                key=key, actor=request.user, new_owner=form.cleaned_data["owner"]
            ).rotation
            if new_key is not None:
                messages.success(
                    request,
                    f"Owner changed. The key's unrevealed secret was destroyed; {new_key.alias} is being made "
                    "for the new owner to reveal.",
                )
            else:
                messages.success(request, "Owner changed.")
        except (ValidationError, services.InvalidTransition) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.error(request, "Choose an active person.")
    return redirect("key_detail", pk=pk)


# --- model policy (admins) -----------------------------------------------------------------------------------


@role_required(permissions.can_manage_model_policy, "Only admins manage model policy.")
def model_policy_list(request):
    return render(
        request,
        "keys/model_policy_list.html",
        {
            "policies": selectors.model_policy_list(),
            "classifications": DataClassification.objects.all(),
        },
    )


@role_required(permissions.can_manage_model_policy, "Only admins manage model policy.")
@second_factor_required
def model_policy_edit(request, pk=None):
    policy = get_object_or_404(ModelPolicy, pk=pk) if pk else None
    form = ModelPolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        fields = {f: form.cleaned_data[f] for f in ModelPolicyForm.Meta.fields}
        ok, _ = run_service(form, lambda: services.model_policy_save(actor=request.user, policy=policy, **fields))
        if ok:
            messages.success(request, "Model policy saved.")
            return redirect("model_policy_list")
    return render(
        request, "keys/model_policy_form.html", {"form": form, "policy": policy}, status=400 if form.errors else 200
    )


@require_POST
@role_required(permissions.can_manage_model_policy, "Only admins rename data classes.")
@second_factor_required
def classification_relabel(request, pk):
    classification = get_object_or_404(DataClassification, pk=pk)
    form = ClassificationLabelForm(request.POST)
    if form.is_valid():
        services.data_classification_relabel(
            actor=request.user, classification=classification, label=form.cleaned_data["label"]
        )
        messages.success(request, "Label saved.")
    else:
        messages.error(request, "A label is required.")
    return redirect("model_policy_list")


@role_required(permissions.can_manage_teams, "Only admins change a team's key policy.")
@second_factor_required
def team_key_policy(request, slug):
    team = get_object_or_404(Team, slug=slug)
    policy = services.team_key_policy(team)
    form = TeamKeyPolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        ok, _ = run_service(
            form, lambda: services.team_key_policy_save(actor=request.user, team=team, **form.cleaned_data)
        )
        if ok:
            messages.success(request, "Key policy saved.")
            return redirect("team_detail", slug=slug)
    return render(
        request, "keys/team_key_policy.html", {"form": form, "team": team}, status=400 if form.errors else 200
    )


# --- gateway operations (admins; auditors read) -------------------------------------------------------------


@role_required(permissions.can_view_gateway_operations, "Only admins and auditors see gateway operations.")
def gateway_commands(request):
    status = request.GET.get("status", "")
    counts = selectors.gateway_command_counts()
    return render(
        request,
        "keys/gateway_commands.html",
        {
            "page": paginate(request, selectors.gateway_command_list(status=status)),
            "counts": counts,
            "status": status,
            # Each status with how many commands have it, for the filter's options: "Failed (3)".
            "statuses": [(value, label, counts.get(value, 0)) for value, label in GatewayCommand.Status.choices],
            "can_retry": permissions.can_manage_gateway(request.user),
            "query": f"status={status}" if status else "",
        },
    )


@require_POST
@role_required(permissions.can_manage_gateway, "Only admins retry gateway commands.")
def gateway_command_retry(request, pk):
    command = get_object_or_404(GatewayCommand, pk=pk)
    try:
        services.gateway_command_retry(command=command, actor=request.user)
        messages.success(request, f"Command #{pk} queued again.")
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect(reverse("gateway_commands") + "?status=failed")


@role_required(permissions.can_view_gateway_operations, "Only admins and auditors see unmanaged keys.")
def unmanaged_keys(request):
    return render(
        request,
        "keys/unmanaged_keys.html",
        {
            "page": paginate(request, selectors.unmanaged_key_list(status=request.GET.get("status", "open"))),
            "can_manage": permissions.can_manage_gateway(request.user),
            "adopt_form": AdoptForm(),
        },
    )


@require_POST
@role_required(permissions.can_manage_gateway, "Only admins adopt or delete unmanaged keys.")
def unmanaged_key_decide(request, pk):
    unmanaged = get_object_or_404(UnmanagedKey, pk=pk)
    try:
        if request.POST.get("action") == "delete":
            services.unmanaged_key_delete(unmanaged=unmanaged, actor=request.user)
            messages.success(request, "Deleting it from the gateway.")
        else:
            form = AdoptForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Choose a team and an owner to adopt the key.")
                return redirect("unmanaged_keys")
            services.unmanaged_key_adopt(unmanaged=unmanaged, actor=request.user, **form.cleaned_data)
            messages.success(request, "Adopted: its spend is now attributed.")
    except (ValidationError, services.InvalidTransition) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    return redirect("unmanaged_keys")
