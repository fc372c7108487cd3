"""SCIM 2.0 (RFC 7643 resources, RFC 7644 protocol) as govsite speaks it: rendering people and groups,
reading request bodies, PATCH operations, filters and paging, and the error body. No business rules:
the views turn what this module parses into calls of services.py.

What govsite stores of a SCIM User: userName (the email, which is also the login), one display name
(`name.formatted`, else `givenName familyName`, else `displayName`), `active` and `externalId`.
Other attributes an identity provider sends (titles, phone numbers, the enterprise extension...) are
accepted and ignored. A Group is a display name, an externalId and members.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import Q, QuerySet
from django.http import JsonResponse

from govsite.accounts.models import ScimGroup, User
from govsite.accounts.services import ScimUserInput

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

CONTENT_TYPE = "application/scim+json"
MAX_RESULTS = 200
DEFAULT_COUNT = 100


class ScimError(Exception):
    """An error answered with the SCIM error body (RFC 7644 §3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str = ""):
        self.status, self.detail, self.scim_type = status, detail, scim_type
        super().__init__(detail)

    def response(self) -> JsonResponse:
        return error_response(self.status, self.detail, self.scim_type)


def scim_response(data: dict, status: int = 200, **headers: str) -> JsonResponse:
    response = JsonResponse(data, status=status, content_type=CONTENT_TYPE)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def error_response(status: int, detail: str, scim_type: str = "") -> JsonResponse:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return scim_response(body, status=status)


# --- rendering ------------------------------------------------------------------------------------


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def user_resource(user: User, base_url: str) -> dict:
    location = f"{base_url}Users/{user.pk}"
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": str(user.pk),
        "userName": user.email,
        "name": {"formatted": user.full_name} if user.full_name else {},
        "displayName": user.display_name,
        "emails": [{"value": user.email, "type": "work", "primary": True}],
        "active": user.is_active,
        "groups": [
            {"value": str(g.pk), "display": g.display_name, "$ref": f"{base_url}Groups/{g.pk}", "type": "direct"}
            for g in user.scim_groups.all()
        ],
        "meta": {"resourceType": "User", "created": _iso(user.date_joined), "location": location},
    }
    if user.scim_external_id:
        resource["externalId"] = user.scim_external_id
    return resource


def group_resource(group: ScimGroup, base_url: str, *, members: bool = True) -> dict:
    resource: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.pk),
        "displayName": group.display_name,
        "meta": {
            "resourceType": "Group",
            "created": _iso(group.created_at),
            "lastModified": _iso(group.updated_at),
            "location": f"{base_url}Groups/{group.pk}",
        },
    }
    if members:
        resource["members"] = [
            {"value": str(u.pk), "display": u.email, "$ref": f"{base_url}Users/{u.pk}", "type": "User"}
            for u in group.members.all()
        ]
    if group.external_id:
        resource["externalId"] = group.external_id
    return resource


ALWAYS_RETURNED = {"schemas", "id"}


def select_attributes(resource: dict, attributes: str, excluded: str) -> dict:
    """`attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), on top-level attributes."""

    def names(raw: str) -> set[str]:
        return {_strip_schema(a.strip()).split(".")[0].lower() for a in raw.split(",") if a.strip()}

    if attributes:
        wanted = names(attributes) | ALWAYS_RETURNED
        return {k: v for k, v in resource.items() if k.lower() in wanted}
    if excluded:
        dropped = names(excluded) - ALWAYS_RETURNED
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
        try:
            return int(raw) if raw != "" else default
        except ValueError as exc:
            raise ScimError(400, f"{name} must be an integer.", "invalidValue") from exc

    start = max(number("startIndex", 1), 1)
    count = min(max(number("count", DEFAULT_COUNT), 0), MAX_RESULTS)
    return start, count


# --- reading bodies -------------------------------------------------------------------------------


def _require_schema(body: Any, schema: str) -> dict:
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object.", "invalidSyntax")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or schema not in schemas:
        raise ScimError(400, f'"schemas" must list {schema}.', "invalidSyntax")
    return body


def _string(value: Any, name: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise ScimError(400, f"{name} is required.", "invalidValue")
        return ""
    if not isinstance(value, str):
        raise ScimError(400, f"{name} must be a string.", "invalidValue")
    return value


def _boolean(value: Any, name: str) -> bool:
    # Some identity providers (Entra ID) send booleans in PATCH values as the strings "True"/"False".
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise ScimError(400, f"{name} must be true or false.", "invalidValue")


@dataclass(frozen=True)
class _UserDraft:
    """The attributes govsite keeps, while a request is applied to them."""

    user_name: str
    formatted: str = ""
    given_name: str = ""
    family_name: str = ""
    display_name: str = ""
    active: bool = True
    external_id: str = ""

    @property
    def full_name(self) -> str:
        return (
            self.formatted or " ".join(p for p in (self.given_name, self.family_name) if p) or self.display_name or ""
        ).strip()

    def to_input(self) -> ScimUserInput:
        return ScimUserInput(
            email=self.user_name, full_name=self.full_name, active=self.active, external_id=self.external_id
        )


def user_input_from_resource(body: Any, *, current: User | None = None) -> ScimUserInput:
    """A POST or PUT body. PUT replaces: what is left out is cleared, except `active` (kept as it is)."""
    body = _require_schema(body, USER_SCHEMA)
    name = body.get("name") or {}
    if not isinstance(name, dict):
        raise ScimError(400, "name must be an object.", "invalidValue")
    active = body.get("active")
    draft = _UserDraft(
        user_name=_string(body.get("userName"), "userName", required=True),
        formatted=_string(name.get("formatted"), "name.formatted"),
        given_name=_string(name.get("givenName"), "name.givenName"),
        family_name=_string(name.get("familyName"), "name.familyName"),
        display_name=_string(body.get("displayName"), "displayName"),
        active=_boolean(active, "active") if active is not None else (current.is_active if current else True),
        external_id=_string(body.get("externalId"), "externalId"),
    )
    return draft.to_input()


def group_from_resource(body: Any) -> tuple[str, list[int], str]:
    """A POST or PUT Group body: (displayName, member ids, externalId)."""
    body = _require_schema(body, GROUP_SCHEMA)
    display_name = _string(body.get("displayName"), "displayName", required=True)
    return display_name, _member_ids(body.get("members") or []), _string(body.get("externalId"), "externalId")


def _member_ids(value: Any) -> list[int]:
    if not isinstance(value, list):
        raise ScimError(400, "members must be a list of {value: <user id>}.", "invalidValue")
    ids = []
    for member in value:
        raw = member.get("value") if isinstance(member, dict) else None
        ids.append(_user_id(raw, "members.value"))
    return ids


def _user_id(raw: Any, name: str) -> int:
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise ScimError(400, f"{name} must be the id of a person govsite returned, not {raw!r}.", "invalidValue")


# --- PATCH (RFC 7644 §3.5.2) ----------------------------------------------------------------------

_PATH = re.compile(r"^(?P<attr>[A-Za-z][\w$-]*)(?:\[(?P<filter>[^\]]*)\])?(?:\.(?P<sub>[A-Za-z][\w$-]*))?$")


def _strip_schema(path: str) -> str:
    for schema in (USER_SCHEMA, GROUP_SCHEMA):
        if path.lower().startswith(schema.lower() + ":"):
            return path[len(schema) + 1 :]
    return path


def _operations(body: Any) -> list[tuple[str, str, Any]]:
    body = _require_schema(body, PATCH_OP)
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list.", "invalidSyntax")
    parsed = []
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimError(400, "Each operation must be an object.", "invalidSyntax")
        op = str(operation.get("op", "")).lower()
        if op not in {"add", "replace", "remove"}:
            raise ScimError(400, f"Unknown op {operation.get('op')!r}: add, replace or remove.", "invalidSyntax")
        path = operation.get("path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise ScimError(400, "path must be a non-empty string.", "invalidPath")
        if op == "remove" and path is None:
            raise ScimError(400, "remove needs a path.", "noTarget")
        if op != "remove" and "value" not in operation:
            raise ScimError(400, f"{op} needs a value.", "invalidValue")
        parsed.append((op, path.strip() if path else "", operation.get("value")))
    return parsed


def _split_path(path: str) -> tuple[str, str, str] | None:
    """(attribute, filter, sub-attribute) in lower case, or None for an extension schema's attribute."""
    path = _strip_schema(path)
    if path.lower().startswith("urn:"):
        return None  # an extension (e.g. the enterprise User): govsite keeps none of it
    match = _PATH.match(path)
    if match is None:
        raise ScimError(400, f"Cannot read the path {path!r}.", "invalidPath")
    return match["attr"].lower(), match["filter"] or "", (match["sub"] or "").lower()


_USER_FIELDS = {
    ("username", ""): "user_name",
    ("displayname", ""): "display_name",
    ("name", "formatted"): "formatted",
    ("name", "givenname"): "given_name",
    ("name", "familyname"): "family_name",
    ("externalid", ""): "external_id",
    ("active", ""): "active",
}


def _set_user_attr(draft: _UserDraft, op: str, attr: str, sub: str, value: Any) -> _UserDraft:
    if attr == "name" and not sub:
        if op == "remove":
            return replace(draft, formatted="", given_name="", family_name="")
        if not isinstance(value, dict):
            raise ScimError(400, "name must be an object.", "invalidValue")
        for key, item in value.items():
            draft = _set_user_attr(draft, op, "name", key.lower(), item)
        return draft
    field = _USER_FIELDS.get((attr, sub))
    if field is None:
        return draft  # an attribute govsite does not keep (title, phoneNumbers, emails...): ignored
    if op == "remove":
        if field in {"user_name", "active"}:
            raise ScimError(400, f"{attr} is required and cannot be removed.", "mutability")
        return replace(draft, **{field: ""})
    if field == "active":
        return replace(draft, active=_boolean(value, "active"))
    return replace(draft, **{field: _string(value, f"{attr}{'.' + sub if sub else ''}")})


def apply_user_patch(user: User, body: Any) -> ScimUserInput:
    """The person as they would be after the PATCH; nothing is written here."""
    given, _, family = user.full_name.partition(" ")
    draft = _UserDraft(
        user_name=user.email,
        formatted=user.full_name,
        given_name=given,
        family_name=family,
        display_name=user.full_name,
        active=user.is_active,
        external_id=user.scim_external_id,
    )
    name_touched = False
    for op, path, value in _operations(body):
        if not path:
            if not isinstance(value, dict):
                raise ScimError(400, f"{op} without a path needs an object value.", "invalidValue")
            items = list(value.items())
        else:
            items = [(path, value)]
        for key, item in items:
            parts = _split_path(key)
            if parts is None:
                continue
            attr, _filter, sub = parts
            if attr in {"name", "displayname"}:
                if not name_touched and not (attr == "name" and sub == "formatted"):
                    # A new given or family name or display name must win over the stored full name.
                    draft = replace(draft, formatted="")
                name_touched = True
            draft = _set_user_attr(draft, op, attr, sub, item)
    return draft.to_input()


_MEMBER_FILTER = re.compile(r'^\s*value\s+eq\s+"(?P<id>[^"]*)"\s*$', re.IGNORECASE)


def apply_group_patch(group: ScimGroup, body: Any) -> tuple[str, list[int], str]:
    """(displayName, member ids, externalId) as they would be after the PATCH; nothing is written here."""
    display_name, external_id = group.display_name, group.external_id
    members = list(group.members.order_by("pk").values_list("pk", flat=True))
    for op, path, value in _operations(body):
        items = list(value.items()) if not path and isinstance(value, dict) else [(path, value)]
        if not path and not isinstance(value, dict):
            raise ScimError(400, f"{op} without a path needs an object value.", "invalidValue")
        for key, item in items:
            parts = _split_path(key)
            if parts is None:
                continue
            attr, member_filter, _sub = parts
            if attr == "displayname":
                if op == "remove":
                    raise ScimError(400, "displayName is required and cannot be removed.", "mutability")
                display_name = _string(item, "displayName")
            elif attr == "externalid":
                external_id = "" if op == "remove" else _string(item, "externalId")
            elif attr == "members":
                members = _patch_members(members, op, member_filter, item)
            # id, meta and anything else: read-only or not kept, ignored
    return display_name, members, external_id


def _patch_members(members: list[int], op: str, member_filter: str, value: Any) -> list[int]:
    if member_filter:
        match = _MEMBER_FILTER.match(member_filter)
        if match is None or op != "remove":
            raise ScimError(400, 'Only remove with members[value eq "<id>"] is supported.', "invalidFilter")
        gone = _user_id(match["id"], "members.value")
        return [pk for pk in members if pk != gone]
    if op == "remove" and value is None:
        return []
    ids = _member_ids(value if isinstance(value, list) else [value])
    if op == "add":
        return members + [pk for pk in ids if pk not in members]
    if op == "replace":
        return list(dict.fromkeys(ids))
    return [pk for pk in members if pk not in set(ids)]


# --- filters (RFC 7644 §3.4.2.2): `attr eq "value"` clauses joined by `and` ------------------------

_CLAUSE = re.compile(
    r'^\s*(?P<attr>[A-Za-z][\w.:$-]*)\s+(?P<op>eq)\s+(?P<value>"(?:[^"\\]|\\.)*"|true|false|null|-?\d+)\s*$',
    re.IGNORECASE,
)
_MEMBER_CLAUSE = re.compile(r'^\s*members\[\s*value\s+eq\s+"(?P<id>[^"]*)"\s*\]\s*$', re.IGNORECASE)
_AND = re.compile(r'\s+and\s+(?=(?:[^"]*"[^"]*")*[^"]*$)', re.IGNORECASE)  # "and" outside quotes


def _clauses(expression: str) -> list[str]:
    if not expression.strip():
        return []
    if re.search(r"\b(or|not)\b|[()]", re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression), re.IGNORECASE):
        raise ScimError(400, 'Only "eq" comparisons joined by "and" are supported.', "invalidFilter")
    return _AND.split(expression)


def _literal(raw: str):
    lowered = raw.lower()
    if raw.startswith('"'):
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered == "null":
        return None
    return int(raw)


def _id_condition(value) -> Q:
    text = str(value)
    return Q(pk=int(text)) if text.isdigit() else Q(pk__in=[])


def filter_users(queryset: QuerySet[User], expression: str) -> QuerySet[User]:
    for clause in _clauses(expression):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ScimError(400, f"Cannot read the filter {clause.strip()!r}.", "invalidFilter")
        attr, value = _strip_schema(match["attr"]).lower(), _literal(match["value"])
        if attr in {"username", "emails.value", "emails"}:
            condition = Q(email__iexact=str(value))  # userName is case-insensitive (RFC 7643 §4.1.1)
        elif attr == "externalid":
            condition = Q(scim_external_id=str(value)) if value is not None else Q(scim_external_id="")
        elif attr == "id":
            condition = _id_condition(value)
        elif attr == "active" and isinstance(value, bool):
            condition = Q(is_active=value)
        elif attr == "displayname":
            condition = Q(full_name=str(value)) | Q(full_name="", email__iexact=str(value))
        else:
            raise ScimError(400, f"Filtering on {match['attr']!r} is not supported.", "invalidFilter")
        queryset = queryset.filter(condition)
    return queryset


def filter_groups(queryset: QuerySet[ScimGroup], expression: str) -> QuerySet[ScimGroup]:
    for clause in _clauses(expression):
        member = _MEMBER_CLAUSE.match(clause)
        if member is not None:
            member_id = member["id"].strip()
            queryset = queryset.filter(members__pk=int(member_id)) if member_id.isdigit() else queryset.none()
            continue
        match = _CLAUSE.match(clause)
        if match is None:
            raise ScimError(400, f"Cannot read the filter {clause.strip()!r}.", "invalidFilter")
        attr, value = _strip_schema(match["attr"]).lower(), _literal(match["value"])
        if attr == "displayname":
            condition = Q(display_name=str(value))
        elif attr == "externalid":
            condition = Q(external_id=str(value)) if value is not None else Q(external_id="")
        elif attr == "id":
            condition = _id_condition(value)
        else:
            raise ScimError(400, f"Filtering on {match['attr']!r} is not supported.", "invalidFilter")
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


def _attribute(name: str, type_: str = "string", **extra) -> dict:
    attribute = {
        "name": name,
        "type": type_,
        "multiValued": False,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    }
    attribute.update(extra)
    return attribute


def _schemas() -> list[dict]:
    sub_name = [_attribute("formatted"), _attribute("givenName"), _attribute("familyName")]
    reference = [_attribute("value"), _attribute("display", mutability="readOnly"), _attribute("$ref", "reference")]
    return [
        {
            "id": USER_SCHEMA,
            "name": "User",
            "description": "A person. userName is their email address and their login.",
            "attributes": [
                _attribute("userName", required=True, uniqueness="server"),
                _attribute("name", "complex", subAttributes=sub_name),
                _attribute("displayName"),
                _attribute("active", "boolean"),
                _attribute("externalId", caseExact=True),
                _attribute(
                    "emails", "complex", multiValued=True, mutability="readOnly", subAttributes=[_attribute("value")]
                ),
                _attribute("groups", "complex", multiValued=True, mutability="readOnly", subAttributes=reference),
            ],
        },
        {
            "id": GROUP_SCHEMA,
            "name": "Group",
            "description": "A group; its displayName is matched against govsite's SSO group mappings.",
            "attributes": [
                _attribute("displayName", required=True, caseExact=True, uniqueness="server"),
                _attribute("externalId", caseExact=True),
                _attribute("members", "complex", multiValued=True, subAttributes=reference),
            ],
        },
    ]


def schemas(base_url: str) -> list[dict]:
    return [
        {
            **schema,
            "schemas": [SCHEMA],
            "meta": {"resourceType": "Schema", "location": f"{base_url}Schemas/{schema['id']}"},
        }
        for schema in _schemas()
    ]


def resource_types(base_url: str) -> list[dict]:
    return [
        {
            "schemas": [RESOURCE_TYPE],
            "id": name,
            "name": name,
            "endpoint": f"/{name}s",
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}ResourceTypes/{name}"},
        }
        for name, schema in (("User", USER_SCHEMA), ("Group", GROUP_SCHEMA))
    ]


def by_id(items: Iterable[dict], wanted: str) -> dict:
    for item in items:
        if item["id"] == wanted:
            return item
    raise ScimError(404, f"No such resource: {wanted}.")
