from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from govsite.accounts import permissions, selectors, services
from govsite.accounts.forms import (
    DeactivateForm,
    MembershipAddForm,
    MembershipRoleForm,
    OrgRolesForm,
    PersonCreateForm,
    SsoMappingForm,
    TeamForm,
)
from govsite.accounts.mfa import second_factor_required
from govsite.accounts.models import Membership, SsoGroupMapping, TeamRole
from govsite.accounts.slack import webhook_hint
from govsite.web import login_required, paginate, role_required, run_service

# --- teams ------------------------------------------------------------------------------------


@login_required
def team_list(request):
    teams = selectors.team_list(user=request.user)
    return render(
        request,
        "accounts/team_list.html",
        {"page": paginate(request, teams), "can_manage": permissions.can_manage_teams(request.user)},
    )


@login_required
def team_detail(request, slug):
    team = get_object_or_404(permissions.teams_visible_to(request.user), slug=slug)
    can_manage = permissions.can_manage_teams(request.user)
    members = selectors.team_members(team=team)
    return render(
        request,
        "accounts/team_detail.html",
        {
            "team": team,
            "members": members,
            "can_manage": can_manage,
            "add_form": MembershipAddForm() if can_manage else None,
            "role_choices": TeamRole.choices,
            "webhook_hint": webhook_hint(team.slack_webhook_url),
            "slack_messages": selectors.team_slack_messages(team=team) if can_manage else None,
        },
    )


@role_required(permissions.can_manage_teams, "Only admins can create teams.")
def team_create(request):
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, team = run_service(form, lambda: services.team_create(actor=request.user, **form.cleaned_data))
        if ok:
            messages.success(request, f"Team {team.name} created.")
            return redirect("team_detail", slug=team.slug)
    return render(request, "accounts/team_form.html", {"form": form, "creating": True})


@role_required(permissions.can_manage_teams, "Only admins can edit teams.")
def team_edit(request, slug):
    team = get_object_or_404(permissions.teams_visible_to(request.user), slug=slug)
    form = TeamForm(request.POST or None, instance=team)
    if request.method == "POST" and form.is_valid():
        ok, team = run_service(form, lambda: services.team_update(actor=request.user, team=team, **form.cleaned_data))
        if ok:
            messages.success(request, "Team saved.")
            return redirect("team_detail", slug=team.slug)
    return render(request, "accounts/team_form.html", {"form": form, "team": team, "creating": False})


@role_required(permissions.can_manage_teams, "Only admins can change memberships.")
@second_factor_required
def membership_add(request, slug):
    team = get_object_or_404(permissions.teams_visible_to(request.user), slug=slug)
    form = MembershipAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, membership = run_service(
            form,
            lambda: services.membership_add(
                actor=request.user, team=team, user=form.cleaned_data["user"], role=form.cleaned_data["role"]
            ),
        )
        if ok:
            messages.success(request, f"{membership.user.email} added to {team.name}.")
            return redirect("team_detail", slug=team.slug)
    return render(
        request, "accounts/membership_add.html", {"form": form, "team": team}, status=400 if form.errors else 200
    )


def _scoped_membership(request, slug, pk) -> Membership:
    team = get_object_or_404(permissions.teams_visible_to(request.user), slug=slug)
    return get_object_or_404(Membership.objects.select_related("user", "team"), team=team, pk=pk)


@require_POST
@role_required(permissions.can_manage_teams, "Only admins can change memberships.")
@second_factor_required
def membership_role(request, slug, pk):
    membership = _scoped_membership(request, slug, pk)
    form = MembershipRoleForm(request.POST)
    if form.is_valid():
        ok, _ = run_service(
            form,
            lambda: services.membership_change_role(
                actor=request.user, membership=membership, role=form.cleaned_data["role"]
            ),
        )
        if ok:
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
            return redirect("team_detail", slug=slug)
    for field, errors in form.errors.items():
        messages.error(request, f"{field}: {' '.join(errors)}")
    return redirect("team_detail", slug=slug)


@role_required(permissions.can_manage_teams, "Only admins can change memberships.")
@second_factor_required
def membership_remove(request, slug, pk):
    membership = _scoped_membership(request, slug, pk)
    if request.method == "POST":
        services.membership_remove(actor=request.user, membership=membership)
        messages.success(request, f"{membership.user.email} removed from {membership.team.name}.")
        return redirect("team_detail", slug=slug)
    return render(
        request,
        "accounts/confirm.html",
        {
            "title": f"Remove {membership.user.email} from {membership.team.name}?",
            "body": "They lose the team's role at once. Keys they hold for this team are not revoked by this.",
            "confirm_label": "Remove from team",
            "cancel_url": reverse("team_detail", args=[slug]),
        },
    )


# --- people -----------------------------------------------------------------------------------


@login_required
def people_list(request):
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "active")
    people = selectors.people_list(user=request.user, query=query, status=status)
    return render(
        request,
        "accounts/people_list.html",
        {
            "page": paginate(request, people),
            "q": query,
            "status": status,
            "can_manage": permissions.can_manage_people(request.user),
        },
    )


@login_required
def person_detail(request, pk):
    person = get_object_or_404(permissions.people_visible_to(request.user), pk=pk)
    can_manage = permissions.can_manage_people(request.user)
    return render(
        request,
        "accounts/person_detail.html",
        {
            "person": person,
            "memberships": selectors.person_memberships(person=person),
            "org_roles": sorted(person.org_roles),
            "can_manage": can_manage,
            "roles_form": OrgRolesForm(initial={"org_roles": sorted(person.org_roles)}) if can_manage else None,
        },
    )


@role_required(permissions.can_manage_people, "Only admins can add people.")
def person_create(request):
    form = PersonCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, person = run_service(form, lambda: services.user_create(actor=request.user, **form.cleaned_data))
        if ok:
            messages.success(request, f"{person.email} added. They sign in through SSO.")
            return redirect("person_detail", pk=person.pk)
    return render(request, "accounts/person_form.html", {"form": form})


@require_POST
@role_required(permissions.can_manage_people, "Only admins can change org roles.")
@second_factor_required
def person_roles(request, pk):
    person = get_object_or_404(permissions.people_visible_to(request.user), pk=pk)
    form = OrgRolesForm(request.POST)
    if form.is_valid():
        ok, _ = run_service(
            form,
            lambda: services.user_set_org_roles(actor=request.user, user=person, roles=form.cleaned_data["org_roles"]),
        )
        if ok:
            messages.success(request, "Org roles saved.")
            return redirect("person_detail", pk=pk)
    for errors in form.errors.values():
        messages.error(request, " ".join(errors))
    return redirect("person_detail", pk=pk)


@role_required(permissions.can_manage_people, "Only admins can deactivate people.")
def person_deactivate(request, pk):
    person = get_object_or_404(permissions.people_visible_to(request.user), pk=pk)
    form = DeactivateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, _ = run_service(
            form, lambda: services.user_deactivate(actor=request.user, user=person, reason=form.cleaned_data["reason"])
        )
        if ok:
            messages.success(request, f"{person.email} is deactivated; their sessions have ended.")
            return redirect("person_detail", pk=pk)
    return render(request, "accounts/person_deactivate.html", {"form": form, "person": person})


@require_POST
@role_required(permissions.can_manage_people, "Only admins can reactivate people.")
def person_reactivate(request, pk):
    person = get_object_or_404(permissions.people_visible_to(request.user), pk=pk)
    services.user_reactivate(actor=request.user, user=person)
    messages.success(request, f"{person.email} is active again.")
    return redirect("person_detail", pk=pk)


# --- SSO mapping ------------------------------------------------------------------------------


@role_required(permissions.can_manage_people, "Only admins can edit SSO mappings.")
@second_factor_required
def sso_mappings(request):
    form = SsoMappingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, _ = run_service(form, lambda: services.sso_mapping_create(actor=request.user, **form.cleaned_data))
        if ok:
            messages.success(request, "Mapping added; it applies from each person's next SSO login.")
            return redirect("sso_mappings")
    return render(
        request,
        "accounts/sso_mappings.html",
        {
            "form": form,
            "mappings": selectors.sso_mapping_list(),
        },
        status=400 if form.errors else 200,
    )


@require_POST
@role_required(permissions.can_manage_people, "Only admins can edit SSO mappings.")
@second_factor_required
def sso_mapping_delete(request, pk):
    mapping = get_object_or_404(SsoGroupMapping, pk=pk)
    services.sso_mapping_delete(actor=request.user, mapping=mapping)
    messages.success(request, f"Mapping for {mapping.group} removed.")
    return redirect("sso_mappings")
