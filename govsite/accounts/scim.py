"""SCIM 2.0 (RFC 7643 resources, RFC 7644 protocol) as govsite speaks it: people and groups as SCIM
resources, SCIM ids, filters and paging, the service provider's configuration. No business rules: the views
turn what this module reads into calls of the services. The schemas are in scim_schema, PATCH in
scim_patch, the responses and the error in scim_errors.

A User's SCIM id is the person's id for their first provisioning, then "<id>-<n>" for the n-th: a DELETE
ends a provisioning (the id answers 404 for ever) and a later POST of the same userName starts the next.
"""

from __future__ import annotations

import re
from copy import deepcopy
from typing import Any

from django.db.models import Q, QuerySet

from govsite.accounts.models import ScimGroup, User
from govsite.accounts.scim_errors import ScimError
from govsite.accounts.scim_patch import boolean, clean_resource, literal
from govsite.accounts.scim_schema import (
    ENTERPRISE_USER_SCHEMA,
    GROUP,
    GROUP_SCHEMA,
    SERVICE_PROVIDER_CONFIG,
    USER_SCHEMA,
    USER_SCHEMAS,
)
from govsite.accounts.services import ScimUserInput

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_RESULTS = 200
DEFAULT_COUNT = 100
# What govsite derives rather than keeps in User.scim_attributes.
DERIVED = ("userName", "active", "externalId")


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


# --- ids ------------------------------------------------------------------------------------------


def scim_user_id(user: User) -> str:
    return str(user.pk) if user.scim_provisioning == 1 else f"{user.pk}-{user.scim_provisioning}"


_USER_ID = re.compile(r"^(?P<pk>\d{1,18})(?:-(?P<n>\d{1,9}))?$")


def user_id_condition(raw: Any) -> Q:
    """The live person a SCIM id names (none for an id of an ended provisioning)."""
    match = _USER_ID.match(str(raw).strip()) if isinstance(raw, str | int) and not isinstance(raw, bool) else None
    if match is None or (match["n"] is not None and int(match["n"]) < 2):
        return Q(pk__in=[])
    return Q(pk=int(match["pk"]), scim_provisioning=int(match["n"] or 1), scim_deleted_at__isnull=True)


def live_users() -> QuerySet[User]:
    """The people a SCIM client sees: everyone but those whose SCIM resource it deleted."""
    return User.objects.filter(scim_deleted_at__isnull=True)


def group_pk(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


# --- Users ----------------------------------------------------------------------------------------


def user_document(user: User) -> dict:
    """The person's SCIM attributes (no id, meta or groups)."""
    if user.scim_attributes is not None:
        kept = deepcopy(user.scim_attributes)
    else:  # a person no identity provider described (added by an admin, or at their first SSO login)
        kept = {"emails": [{"value": user.email, "type": "work", "primary": True}], "displayName": user.display_name}
        if user.full_name:
            kept["name"] = {"formatted": user.full_name}
    doc = {"userName": user.email, **kept, "active": user.is_active}
    if user.scim_external_id:
        doc["externalId"] = user.scim_external_id
    return doc


def user_resource(user: User, base_url: str) -> dict:
    doc = user_document(user)
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA] + ([ENTERPRISE_USER_SCHEMA] if ENTERPRISE_USER_SCHEMA in doc else []),
        "id": scim_user_id(user),
        **doc,
    }
    groups = [
        {"value": str(g.pk), "display": g.display_name, "$ref": f"{base_url}Groups/{g.pk}", "type": "direct"}
        for g in user.scim_groups.all()
    ]
    if groups:
        resource["groups"] = groups
    resource["meta"] = {
        "resourceType": "User",
        "created": _iso(user.date_joined),
        "location": f"{base_url}Users/{scim_user_id(user)}",
    }
    return resource


def full_name(doc: dict) -> str:
    """The one name govsite shows: name.formatted, else givenName familyName, else displayName."""
    name = doc.get("name") or {}
    return (
        name.get("formatted")
        or " ".join(p for p in (name.get("givenName"), name.get("familyName")) if p)
        or doc.get("displayName")
        or ""
    ).strip()


def user_input(doc: dict, *, current: User | None = None) -> ScimUserInput:
    """A document (a POST/PUT body read, or a PATCH applied) as the service's input. `active` left out
    keeps the person as they are (a new one is active)."""
    user_name = doc.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise ScimError(
            400, "userName (the person's email address, their login in govsite) is required.", "invalidValue"
        )
    active = doc.get("active")
    return ScimUserInput(
        email=user_name,
        full_name=full_name(doc),
        active=active if active is not None else (current.is_active if current else True),
        external_id=doc.get("externalId") or "",
        attributes={k: v for k, v in doc.items() if k not in DERIVED},
    )


def require_schema(body: Any, schema: str) -> dict:
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object.", "invalidSyntax")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or schema not in schemas:
        raise ScimError(400, f'"schemas" must list {schema}.', "invalidSyntax")
    return body


def user_input_from_resource(body: Any, *, current: User | None = None) -> ScimUserInput:
    """A POST or PUT body. PUT replaces: what is left out is cleared, except `active` (kept as it is)."""
    body = require_schema(body, USER_SCHEMA)
    for key in ("userName", "name", "active", "externalId"):
        if key in body and body[key] is not None:
            _check_type(key, body[key])
    return user_input(clean_resource(body, USER_SCHEMAS), current=current)


def _check_type(key: str, value: Any) -> None:
    # clean_resource checks these too; named here so the message names the attribute as sent
    if key == "active":
        boolean(value, "active")
    elif key == "name" and not isinstance(value, dict):
        raise ScimError(400, "name must be an object.", "invalidValue")
    elif key in {"userName", "externalId"} and not isinstance(value, str):
        raise ScimError(400, f"{key} must be a string.", "invalidValue")


# --- Groups ---------------------------------------------------------------------------------------


def group_document(group: ScimGroup) -> dict:
    doc: dict[str, Any] = {"displayName": group.display_name}
    members = [{"value": scim_user_id(u), "type": "User"} for u in group.members.all()]
    if members:
        doc["members"] = members
    if group.external_id:
        doc["externalId"] = group.external_id
    return doc


def group_resource(group: ScimGroup, base_url: str, *, members: bool = True) -> dict:
    resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": str(group.pk), "displayName": group.display_name}
    if members:
        listed = [
            {"value": scim_user_id(u), "display": u.email, "$ref": f"{base_url}Users/{scim_user_id(u)}", "type": "User"}
            for u in group.members.all()
        ]
        if listed:
            resource["members"] = listed
    if group.external_id:
        resource["externalId"] = group.external_id
    resource["meta"] = {
        "resourceType": "Group",
        "created": _iso(group.created_at),
        "lastModified": _iso(group.updated_at),
        "location": f"{base_url}Groups/{group.pk}",
    }
    return resource


def group_fields(doc: dict) -> tuple[str, list[int], str]:
    """(displayName, member person ids, externalId) of a group document; a member must be a live User."""
    display_name = doc.get("displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise ScimError(400, "displayName is required.", "invalidValue")
    values = [m.get("value") for m in doc.get("members") or []]
    if any(not isinstance(v, str) for v in values):
        raise ScimError(400, "members.value must be the id of a User govsite returned.", "invalidValue")
    condition = Q(pk__in=[])
    for value in values:
        condition |= user_id_condition(value)
    found = (
        {scim_user_id(u): u.pk for u in User.objects.filter(condition).only("pk", "scim_provisioning")}
        if values
        else {}
    )
    missing = [v for v in values if v not in found]
    if missing:
        raise ScimError(400, f"No User with id {', '.join(missing)} (members are people only).", "invalidValue")
    return display_name, list(dict.fromkeys(found[v] for v in values)), doc.get("externalId") or ""


def group_from_resource(body: Any) -> tuple[str, list[int], str]:
    """A POST or PUT Group body: (displayName, member ids, externalId)."""
    body = require_schema(body, GROUP_SCHEMA)
    if "displayName" in body and not isinstance(body["displayName"], str):
        raise ScimError(400, "displayName must be a string.", "invalidValue")
    return group_fields(clean_resource(body, (GROUP,)))


# --- partial representations, lists and paging (RFC 7644 §3.4.2) -----------------------------------

ALWAYS_RETURNED = {"schemas", "id"}


def _attribute_names(raw: str | list) -> set[str]:
    names = raw if isinstance(raw, list) else str(raw).split(",")
    out = set()
    for name in (str(n).strip() for n in names):
        if not name:
            continue
        if name.lower().startswith(ENTERPRISE_USER_SCHEMA.lower()):
            out.add(ENTERPRISE_USER_SCHEMA.lower())
            continue
        for schema in (USER_SCHEMA, GROUP_SCHEMA):
            if name.lower().startswith(schema.lower() + ":"):
                name = name[len(schema) + 1 :]
        out.add(name.split(".")[0].lower())
    return out


def select_attributes(resource: dict, attributes, excluded) -> dict:
    """`attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), on top-level attributes."""
    if attributes:
        wanted = _attribute_names(attributes) | ALWAYS_RETURNED
        return {k: v for k, v in resource.items() if k.lower() in wanted}
    if excluded:
        dropped = _attribute_names(excluded) - ALWAYS_RETURNED
        return {k: v for k, v in resource.items() if k.lower() not in dropped}
    return resource


def list_response(resources: list[dict], *, total: int, start_index: int) -> dict:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": start_index,
        "Resources": resources,
    }


def paging(params) -> tuple[int, int]:
    """startIndex (1-based) and count, clamped as RFC 7644 §3.4.2.4 says (never an error)."""

    def number(name: str, default: int) -> int:
        raw = params.get(name, "")
        if raw in ("", None):
            return default
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise ScimError(400, f"{name} must be an integer.", "invalidValue") from exc

    start = max(number("startIndex", 1), 1)
    count = min(max(number("count", DEFAULT_COUNT), 0), MAX_RESULTS)
    return start, count


def search_request(body: Any) -> dict:
    """A POST .search body (RFC 7644 §3.4.3) as the query parameters a GET would carry."""
    body = require_schema(body, SEARCH_REQUEST)
    params: dict[str, Any] = {}
    for key in ("filter", "startIndex", "count", "attributes", "excludedAttributes"):
        value = body.get(key)
        if value is None:
            continue
        if key == "filter" and not isinstance(value, str):
            raise ScimError(400, "filter must be a string.", "invalidValue")
        if key in {"attributes", "excludedAttributes"} and not isinstance(value, list | str):
            raise ScimError(400, f"{key} must be a list of attribute names.", "invalidValue")
        params[key] = value
    if params.get("attributes") and params.get("excludedAttributes"):
        raise ScimError(400, "attributes and excludedAttributes are mutually exclusive.", "invalidSyntax")
    return params


# --- filters (RFC 7644 §3.4.2.2): `attr eq "value"` clauses joined by `and` ------------------------

_CLAUSE = re.compile(
    r'^\s*(?P<attr>[A-Za-z][\w.:$-]*)\s+(?P<op>eq)\s+(?P<value>"(?:[^"\\]|\\.)*"|true|false|null|-?\d+)\s*$',
    re.IGNORECASE,
)
_MEMBER_CLAUSE = re.compile(r'^\s*members\[\s*value\s+eq\s+"(?P<id>[^"]*)"\s*\]\s*$', re.IGNORECASE)
_AND = re.compile(r'\s+and\s+(?=(?:[^"]*"[^"]*")*[^"]*$)', re.IGNORECASE)  # "and" outside quotes


def _strip_schema(path: str) -> str:
    for schema in (USER_SCHEMA, GROUP_SCHEMA):
        if path.lower().startswith(schema.lower() + ":"):
            return path[len(schema) + 1 :]
    return path


def _clauses(expression: str) -> list[str]:
    if not expression.strip():
        return []
    if re.search(r"\b(or|not)\b|[()]", re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression), re.IGNORECASE):
        raise ScimError(400, 'Only "eq" comparisons joined by "and" are supported.', "invalidFilter")
    return _AND.split(expression)


def filter_users(queryset: QuerySet[User], expression: str) -> QuerySet[User]:
    for clause in _clauses(expression):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ScimError(400, f"Cannot read the filter {clause.strip()!r}.", "invalidFilter")
        attr, value = _strip_schema(match["attr"]).lower(), literal(match["value"])
        if attr == "username":
            condition = Q(email__iexact=str(value))  # userName is case-insensitive (RFC 7643 §4.1.1)
        elif attr in {"emails.value", "emails"}:
            condition = Q(email__iexact=str(value), scim_attributes__isnull=True) | Q(
                scim_attributes__emails__contains=[{"value": str(value)}]
            )
        elif attr == "externalid":
            condition = Q(scim_external_id=str(value)) if value is not None else Q(scim_external_id="")
        elif attr == "id":
            condition = user_id_condition(str(value))
        elif attr == "active" and isinstance(value, bool):
            condition = Q(is_active=value)
        elif attr == "displayname":
            condition = Q(scim_attributes__displayName=str(value)) | Q(
                scim_attributes__isnull=True, full_name=str(value)
            )
        else:
            raise ScimError(400, f"Filtering on {match['attr']!r} is not supported.", "invalidFilter")
        queryset = queryset.filter(condition)
    return queryset


def filter_groups(queryset: QuerySet[ScimGroup], expression: str) -> QuerySet[ScimGroup]:
    for clause in _clauses(expression):
        member = _MEMBER_CLAUSE.match(clause)
        match = _CLAUSE.match(clause)
        if member is None and match is None:
            raise ScimError(400, f"Cannot read the filter {clause.strip()!r}.", "invalidFilter")
        attr = "members" if member else _strip_schema(match["attr"]).lower()
        value = member["id"] if member else literal(match["value"])
        if attr in {"members", "members.value"}:
            ids = User.objects.filter(user_id_condition(str(value))).values("pk")
            condition = Q(members__in=ids)
        elif attr == "displayname":
            condition = Q(display_name=str(value))
        elif attr == "externalid":
            condition = Q(external_id=str(value)) if value is not None else Q(external_id="")
        elif attr == "id":
            pk = group_pk(str(value))
            condition = Q(pk=pk) if pk is not None else Q(pk__in=[])
        else:
            raise ScimError(400, f"Filtering on {attr!r} is not supported.", "invalidFilter")
        queryset = queryset.filter(condition)
    return queryset


# --- discovery (RFC 7644 §4) ----------------------------------------------------------------------


def service_provider_config(base_url: str) -> dict:
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A SCIM token an admin creates in govsite (Settings → SCIM).",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base_url}ServiceProviderConfig"},
    }
