"""SCIM 2.0 endpoints for identity providers (bearer token, no session, no CSRF), and the admins' page
where SCIM tokens are made and revoked. Views only parse, look up and call one service."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from govsite.accounts import permissions, scim, services
from govsite.accounts.models import ScimGroup, ScimToken, User
from govsite.web import role_required, run_service

SCIM_PREFIX = "scim/v2/"
REALM = 'Bearer realm="govsite-scim"'


def base_url(request) -> str:
    return request.build_absolute_uri(f"/{SCIM_PREFIX}")


def _authenticate(request) -> ScimToken:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise scim.ScimError(401, "Send the SCIM token: Authorization: Bearer scim_...")
    try:
        return services.scim_token_authenticate(secret=secret.strip(), method=request.method, path=request.path)
    except services.ScimTokenRefused as exc:
        raise scim.ScimError(401, str(exc)) from exc


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(
            f"{field}: {' '.join(m for e in errors for m in e.messages)}" for field, errors in exc.error_dict.items()
        )
    return " ".join(exc.messages)


def scim_endpoint(*methods: str) -> Callable:
    """Bearer-token authentication, the allowed methods, and every failure as a SCIM error body."""

    def decorator(view):
        @csrf_exempt  # a bearer token, never a cookie, authenticates these calls
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            try:
                token = _authenticate(request)
                if request.method not in methods:
                    raise scim.ScimError(405, f"{request.method} is not supported here; use {', '.join(methods)}.")
                return view(request, token, *args, **kwargs)
            except scim.ScimError as exc:
                response = exc.response()
                if exc.status == 401:
                    response["WWW-Authenticate"] = REALM
                return response
            except services.AlreadyExists as exc:
                return scim.error_response(409, _messages(exc), "uniqueness")
            except ValidationError as exc:
                return scim.error_response(400, _messages(exc), "invalidValue")
            except PermissionDenied as exc:
                return scim.error_response(403, str(exc) or "Not allowed.")
            except RequestDataTooBig:
                return scim.error_response(413, "The request body is too large.")

        return wrapped

    return decorator


def _body(request):
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise scim.ScimError(400, f"The body is not valid JSON: {exc}", "invalidSyntax") from exc


def _user(pk: str) -> User:
    user = User.objects.prefetch_related("scim_groups").filter(pk=int(pk)).first() if pk.isdigit() else None
    if user is None:
        raise scim.ScimError(404, f"No User with id {pk}.")
    return user


def _group(pk: str) -> ScimGroup:
    group = ScimGroup.objects.prefetch_related("members").filter(pk=int(pk)).first() if pk.isdigit() else None
    if group is None:
        raise scim.ScimError(404, f"No Group with id {pk}.")
    return group


def _listed(request, queryset, render_one) -> dict:
    start, count = scim.paging(request.GET)
    total = queryset.count()
    page = [render_one(item) for item in queryset[start - 1 : start - 1 + count]] if count else []
    return scim.list_response(page, total=total, start_index=start)


def _shown(request, resource: dict) -> dict:
    return scim.select_attributes(
        resource, request.GET.get("attributes", ""), request.GET.get("excludedAttributes", "")
    )


# --- Users ----------------------------------------------------------------------------------------


@scim_endpoint("GET", "POST")
def users(request, token):
    root = base_url(request)
    if request.method == "POST":
        user = services.scim_user_create(token=token, data=scim.user_input_from_resource(_body(request)))
        resource = scim.user_resource(_user(str(user.pk)), root)
        return scim.scim_response(resource, status=201, Location=resource["meta"]["location"])
    queryset = scim.filter_users(User.objects.prefetch_related("scim_groups"), request.GET.get("filter", ""))
    return scim.scim_response(
        _listed(request, queryset.order_by("pk"), lambda u: _shown(request, scim.user_resource(u, root)))
    )


@scim_endpoint("GET", "PUT", "PATCH", "DELETE")
def user_detail(request, token, pk: str):
    user = _user(pk)
    if request.method == "DELETE":
        services.scim_user_deactivate(token=token, user=user)
        return scim.scim_response({}, status=204)
    if request.method == "PUT":
        data = scim.user_input_from_resource(_body(request), current=user)
        services.scim_user_update(token=token, user=user, data=data)
    elif request.method == "PATCH":
        services.scim_user_update(token=token, user=user, data=scim.apply_user_patch(user, _body(request)))
    return scim.scim_response(_shown(request, scim.user_resource(_user(pk), base_url(request))))


# --- Groups ---------------------------------------------------------------------------------------


@scim_endpoint("GET", "POST")
def groups(request, token):
    root = base_url(request)
    if request.method == "POST":
        display_name, member_ids, external_id = scim.group_from_resource(_body(request))
        group = services.scim_group_create(
            token=token, display_name=display_name, member_ids=member_ids, external_id=external_id
        )
        resource = scim.group_resource(_group(str(group.pk)), root)
        return scim.scim_response(resource, status=201, Location=resource["meta"]["location"])
    excluded = {a.strip().lower() for a in request.GET.get("excludedAttributes", "").split(",")}
    with_members = "members" not in excluded
    queryset = scim.filter_groups(ScimGroup.objects.all(), request.GET.get("filter", ""))
    if with_members:
        queryset = queryset.prefetch_related("members")
    return scim.scim_response(
        _listed(
            request,
            queryset.order_by("pk"),
            lambda g: _shown(request, scim.group_resource(g, root, members=with_members)),
        )
    )


@scim_endpoint("GET", "PUT", "PATCH", "DELETE")
def group_detail(request, token, pk: str):
    group = _group(pk)
    if request.method == "DELETE":
        services.scim_group_delete(token=token, group=group)
        return scim.scim_response({}, status=204)
    if request.method in {"PUT", "PATCH"}:
        body = _body(request)
        if request.method == "PUT":
            display_name, member_ids, external_id = scim.group_from_resource(body)
        else:
            display_name, member_ids, external_id = scim.apply_group_patch(group, body)
        services.scim_group_sync(
            token=token, group=group, display_name=display_name, member_ids=member_ids, external_id=external_id
        )
    return scim.scim_response(_shown(request, scim.group_resource(_group(pk), base_url(request))))


# --- discovery ------------------------------------------------------------------------------------


@scim_endpoint("GET")
def service_provider_config(request, token):
    return scim.scim_response(scim.service_provider_config(base_url(request)))


@scim_endpoint("GET")
def schemas(request, token):
    items = scim.schemas(base_url(request))
    return scim.scim_response(scim.list_response(items, total=len(items), start_index=1))


@scim_endpoint("GET")
def schema_detail(request, token, schema_id: str):
    return scim.scim_response(scim.by_id(scim.schemas(base_url(request)), schema_id))


@scim_endpoint("GET")
def resource_types(request, token):
    items = scim.resource_types(base_url(request))
    return scim.scim_response(scim.list_response(items, total=len(items), start_index=1))


@scim_endpoint("GET")
def resource_type_detail(request, token, name: str):
    return scim.scim_response(scim.by_id(scim.resource_types(base_url(request)), name))


# --- the admins' page: SCIM tokens ----------------------------------------------------------------


class ScimTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="The identity provider that uses it (e.g. Okta, Entra ID); its changes are audited as scim:<name>.",
    )


@role_required(permissions.can_manage_people, "Only admins manage SCIM tokens.")
def scim_tokens(request):
    form = ScimTokenForm(request.POST or None)
    new_token = new_secret = None
    if request.method == "POST" and form.is_valid():
        ok, created = run_service(
            form, lambda: services.scim_token_create(actor=request.user, name=form.cleaned_data["name"])
        )
        if ok:
            new_token, new_secret = created
            form = ScimTokenForm()
    response = render(
        request,
        "accounts/scim_tokens.html",
        {
            "form": form,
            "tokens": ScimToken.objects.select_related("created_by", "revoked_by").order_by(
                "revoked_at", "-created_at"
            ),
            "new_token": new_token,
            "new_secret": new_secret,
            "scim_base_url": base_url(request),
        },
        status=400 if form.errors else 200,
    )
    if new_secret:
        response["Cache-Control"] = "no-store"  # the secret is shown once; no copy in any cache
    return response


@role_required(permissions.can_manage_people, "Only admins manage SCIM tokens.")
def scim_token_revoke(request, pk: int):
    token = get_object_or_404(ScimToken, pk=pk)
    if request.method == "POST":
        try:
            services.scim_token_revoke(actor=request.user, token=token)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"SCIM token {token.name} revoked; the identity provider can no longer use it.")
        return redirect("scim_tokens")
    return render(
        request,
        "accounts/confirm.html",
        {
            "title": f"Revoke the SCIM token {token.name}?",
            "body": "The identity provider using it can no longer create, change or deactivate people or groups. "
            "People it provisioned stay as they are.",
            "confirm_label": "Revoke token",
            "cancel_url": reverse("scim_tokens"),
        },
    )
