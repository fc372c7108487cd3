"""SCIM 2.0 endpoints for identity providers (bearer token, no session, no CSRF), and the admins' page
where SCIM tokens are made and revoked. Views only parse, look up and call one service."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from govsite.accounts import permissions, scim, scim_schema, services
from govsite.accounts.models import ScimGroup, ScimToken, User
from govsite.accounts.scim_errors import ScimError, error_response, no_content, scim_response
from govsite.accounts.scim_patch import Patcher
from govsite.web import role_required, run_service

log = logging.getLogger(__name__)

SCIM_PREFIX = "scim/v2/"
REALM = 'Bearer realm="govsite-scim"'


def base_url(request) -> str:
    return request.build_absolute_uri(f"/{SCIM_PREFIX}")


def _authenticate(request) -> ScimToken:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ScimError(401, "Send the SCIM token: Authorization: Bearer scim_...", WWW_Authenticate=REALM)
    try:
        return services.scim_token_authenticate(secret=secret.strip(), method=request.method, path=request.path)
    except services.ScimTokenRefused as exc:
        raise ScimError(401, str(exc), WWW_Authenticate=REALM) from exc


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
                    raise ScimError(
                        405,
                        f"{request.method} is not supported here; use {', '.join(methods)}.",
                        Allow=", ".join(methods),
                    )
                return view(request, token, *args, **kwargs)
            except ScimError as exc:
                return exc.response()
            except services.AlreadyExists as exc:
                return error_response(409, _messages(exc), "uniqueness")
            except ValidationError as exc:
                return error_response(400, _messages(exc), "invalidValue")
            except PermissionDenied as exc:
                return error_response(403, str(exc) or "Not allowed.")
            except RequestDataTooBig:
                return error_response(413, "The request body is too large.")
            except Exception:
                # Logged with its traceback, and answered as SCIM: a client must be able to read every error.
                log.exception("SCIM %s %s failed", request.method, request.path[:200])
                return error_response(500, "govsite could not complete this request; it is logged.")

        return wrapped

    return decorator


def _body(request):
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScimError(400, f"The body is not valid JSON: {exc}", "invalidSyntax") from exc


def _user(scim_id: str) -> User:
    user = scim.live_users().prefetch_related("scim_groups").filter(scim.user_id_condition(scim_id)).first()
    if user is None:
        raise ScimError(404, f"No User with id {scim_id}.")
    return user


def _group(pk: str) -> ScimGroup:
    number = scim.group_pk(pk)
    group = ScimGroup.objects.prefetch_related("members").filter(pk=number).first() if number else None
    if group is None:
        raise ScimError(404, f"No Group with id {pk}.")
    return group


def _listed(params: dict, queryset, render_one) -> dict:
    start, count = scim.paging(params)
    total = queryset.count()
    page = [render_one(item) for item in queryset[start - 1 : start - 1 + count]] if count else []
    return scim.list_response(page, total=total, start_index=start)


def _shown(params: dict, resource: dict) -> dict:
    attributes, excluded = params.get("attributes", ""), params.get("excludedAttributes", "")
    if attributes and excluded:
        raise ScimError(400, "attributes and excludedAttributes are mutually exclusive.", "invalidSyntax")
    return scim.select_attributes(resource, attributes, excluded)


def _query(request) -> dict:
    if request.method == "POST":  # /.search: the same query in a body (RFC 7644 §3.4.3)
        return scim.search_request(_body(request))
    return request.GET.dict()


# --- Users ----------------------------------------------------------------------------------------


@scim_endpoint("GET", "POST")
def users(request, token):
    root = base_url(request)
    if request.method == "POST":
        user = services.scim_user_create(token=token, data=scim.user_input_from_resource(_body(request)))
        resource = scim.user_resource(_user(scim.scim_user_id(user)), root)
        return scim_response(resource, status=201, Location=resource["meta"]["location"])
    return _user_list(request, root)


@scim_endpoint("POST")
def users_search(request, token):
    return _user_list(request, base_url(request))


def _user_list(request, root: str):
    params = _query(request)
    queryset = scim.filter_users(scim.live_users().prefetch_related("scim_groups"), params.get("filter", ""))
    return scim_response(
        _listed(params, queryset.order_by("pk"), lambda u: _shown(params, scim.user_resource(u, root)))
    )


@scim_endpoint("GET", "PUT", "PATCH", "DELETE")
def user_detail(request, token, pk: str):
    user = _user(pk)
    if request.method == "DELETE":
        services.scim_user_delete(token=token, user=user)
        return no_content()
    if request.method == "PUT":
        data = scim.user_input_from_resource(_body(request), current=user)
        services.scim_user_update(token=token, user=user, data=data)
    elif request.method == "PATCH":
        patched = Patcher(scim.user_document(user), scim_schema.USER_SCHEMAS, resource_id=pk).apply(_body(request))
        services.scim_user_update(token=token, user=user, data=scim.user_input(patched, current=user))
    return scim_response(_shown(request.GET.dict(), scim.user_resource(_user(pk), base_url(request))))


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
        return scim_response(resource, status=201, Location=resource["meta"]["location"])
    return _group_list(request, root)


@scim_endpoint("POST")
def groups_search(request, token):
    return _group_list(request, base_url(request))


def _group_list(request, root: str):
    params = _query(request)
    excluded = {a.strip().lower() for a in str(params.get("excludedAttributes", "")).split(",")}
    with_members = "members" not in excluded
    queryset = scim.filter_groups(ScimGroup.objects.all(), params.get("filter", ""))
    if with_members:
        queryset = queryset.prefetch_related("members")
    return scim_response(
        _listed(
            params,
            queryset.order_by("pk"),
            lambda g: _shown(params, scim.group_resource(g, root, members=with_members)),
        )
    )


@scim_endpoint("GET", "PUT", "PATCH", "DELETE")
def group_detail(request, token, pk: str):
    group = _group(pk)
    if request.method == "DELETE":
        services.scim_group_delete(token=token, group=group)
        return no_content()
    if request.method in {"PUT", "PATCH"}:
        body = _body(request)
        if request.method == "PUT":
            display_name, member_ids, external_id = scim.group_from_resource(body)
        else:
            patched = Patcher(scim.group_document(group), scim_schema.GROUP_SCHEMAS, resource_id=pk).apply(body)
            display_name, member_ids, external_id = scim.group_fields(patched)
        services.scim_group_sync(
            token=token, group=group, display_name=display_name, member_ids=member_ids, external_id=external_id
        )
    return scim_response(_shown(request.GET.dict(), scim.group_resource(_group(pk), base_url(request))))


# --- discovery ------------------------------------------------------------------------------------


@scim_endpoint("GET")
def service_provider_config(request, token):
    return scim_response(scim.service_provider_config(base_url(request)))


def _by_id(items: list[dict], wanted: str, what: str) -> dict:
    for item in items:
        if item["id"] == wanted:
            return item
    raise ScimError(404, f"No {what} {wanted}.")


@scim_endpoint("GET")
def schemas(request, token):
    items = [schema.to_scim(base_url(request)) for schema in scim_schema.SCHEMAS]
    return scim_response(scim.list_response(items, total=len(items), start_index=1))


@scim_endpoint("GET")
def schema_detail(request, token, schema_id: str):
    return scim_response(_by_id([s.to_scim(base_url(request)) for s in scim_schema.SCHEMAS], schema_id, "Schema"))


@scim_endpoint("GET")
def resource_types(request, token):
    items = scim_schema.resource_types(base_url(request))
    return scim_response(scim.list_response(items, total=len(items), start_index=1))


@scim_endpoint("GET")
def resource_type_detail(request, token, name: str):
    return scim_response(_by_id(scim_schema.resource_types(base_url(request)), name, "ResourceType"))


# --- what govsite does not serve ------------------------------------------------------------------

NOT_IMPLEMENTED = {
    "bulk": "Bulk operations are not supported (ServiceProviderConfig: bulk.supported is false).",
    "me": "/Me is not supported: a SCIM token belongs to an identity provider, not to a person.",
    ".search": "Search across resource types is not supported; POST /Users/.search or /Groups/.search.",
}


@scim_endpoint("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
def not_implemented(request, token, feature: str):
    raise ScimError(501, NOT_IMPLEMENTED[feature.lower()])


@scim_endpoint("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
def not_found(request, token):
    raise ScimError(404, f"Nothing at {request.path[:200]} (see /{SCIM_PREFIX}ResourceTypes).")


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
