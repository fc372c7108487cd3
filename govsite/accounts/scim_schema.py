"""The SCIM schemas govsite serves (RFC 7643 §4, §5, §6, §7): one description drives /Schemas, the checks
of a request body and PATCH (govsite.accounts.scim_patch), so what /Schemas says is what the server does.

govsite keeps a User's attributes as the identity provider set them (`User.scim_attributes`) and uses
userName (the email, its login), active, externalId and a display name taken from `name`/`displayName`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

READ_ONLY, READ_WRITE, IMMUTABLE = "readOnly", "readWrite", "immutable"


@dataclass(frozen=True)
class Attr:
    """One attribute definition (RFC 7643 §7)."""

    name: str
    type: str = "string"
    multi: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = READ_WRITE
    returned: str = "default"
    uniqueness: str = "none"
    sub: tuple[Attr, ...] = ()
    reference_types: tuple[str, ...] = ()
    canonical: tuple[str, ...] = ()
    description: str = ""
    by_name: dict[str, Attr] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        self.by_name.update({a.name.lower(): a for a in self.sub})

    def child(self, name: str) -> Attr | None:
        return self.by_name.get(name.lower())

    def to_scim(self) -> dict:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi,
            "description": self.description or self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical:
            out["canonicalValues"] = list(self.canonical)
        if self.type == "reference":
            out["referenceTypes"] = list(self.reference_types)
        if self.sub:
            out["subAttributes"] = [a.to_scim() for a in self.sub]
        return out


@dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attr, ...]
    by_name: dict[str, Attr] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        self.by_name.update({a.name.lower(): a for a in self.attributes})

    def attribute(self, name: str) -> Attr | None:
        return self.by_name.get(name.lower())

    def to_scim(self, base_url: str) -> dict:
        return {
            "schemas": [SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}Schemas/{self.id}"},
        }


def _s(name: str, **kw) -> Attr:
    return Attr(name, **kw)


def _ro(name: str, type_: str = "string", **kw) -> Attr:
    return Attr(name, type_, mutability=READ_ONLY, **kw)


def _multi(name: str, *sub: Attr, types: tuple[str, ...] = ("work", "home", "other")) -> Attr:
    return Attr(
        name,
        "complex",
        multi=True,
        sub=(*sub, _s("type", canonical=types), _s("primary", type="boolean")),
    )


_NAME = Attr(
    "name",
    "complex",
    sub=tuple(
        _s(n) for n in ("formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix")
    ),
    description="The person's name; govsite shows `formatted`, else `givenName familyName`, else displayName.",
)

USER = Schema(
    USER_SCHEMA,
    "User",
    "A person. userName is their email address: govsite's login.",
    (
        _s(
            "userName",
            required=True,
            uniqueness="server",
            description="The person's email address, which is their login in govsite (an email is required).",
        ),
        _NAME,
        _s("displayName"),
        _s("nickName"),
        _s("profileUrl", type="reference", reference_types=("external",)),
        _s("title"),
        _s("userType"),
        _s("preferredLanguage"),
        _s("locale"),
        _s("timezone"),
        _s("active", type="boolean", description="false deactivates the person in govsite; true reactivates."),
        _multi("emails", _s("value"), _s("display")),
        _multi("phoneNumbers", _s("value"), _s("display"), types=("work", "home", "mobile", "fax", "pager", "other")),
        _multi(
            "addresses",
            *(_s(n) for n in ("formatted", "streetAddress", "locality", "region", "postalCode", "country")),
        ),
        Attr(
            "groups",
            "complex",
            multi=True,
            mutability=READ_ONLY,
            sub=(
                _ro("value"),
                _ro("$ref", "reference", reference_types=("Group",)),
                _ro("display"),
                _ro("type", canonical=("direct",)),
            ),
            description="The SCIM groups the person is in (change them through the Group).",
        ),
    ),
)

ENTERPRISE_USER = Schema(
    ENTERPRISE_USER_SCHEMA,
    "EnterpriseUser",
    "Enterprise User (kept as sent; govsite does not act on it).",
    (
        *(_s(n) for n in ("employeeNumber", "costCenter", "organization", "division", "department")),
        Attr(
            "manager",
            "complex",
            sub=(_s("value"), _s("$ref", type="reference", reference_types=("User",)), _ro("displayName")),
        ),
    ),
)

GROUP = Schema(
    GROUP_SCHEMA,
    "Group",
    "A group; its displayName is matched against govsite's SSO group mappings.",
    (
        _s("displayName", required=True, uniqueness="server"),
        Attr(
            "members",
            "complex",
            multi=True,
            sub=(
                _s("value", mutability=IMMUTABLE),
                _s("$ref", type="reference", reference_types=("User",), mutability=IMMUTABLE),
                _ro("display"),
                _s("type", canonical=("User",), mutability=IMMUTABLE),
            ),
            description="People only: govsite has no nested groups.",
        ),
    ),
)

# The discovery resources' own schemas (RFC 7643 §8.7.2), read-only like the resources.
_SUPPORTED = _ro("supported", "boolean", required=True)
SERVICE_PROVIDER_CONFIG_SCHEMA = Schema(
    SERVICE_PROVIDER_CONFIG,
    "Service Provider Configuration",
    "Schema for representing the service provider's configuration",
    (
        _ro("documentationUri", "reference", reference_types=("external",)),
        _ro("patch", "complex", required=True, sub=(_SUPPORTED,)),
        _ro(
            "bulk",
            "complex",
            required=True,
            sub=(
                _SUPPORTED,
                _ro("maxOperations", "integer", required=True),
                _ro("maxPayloadSize", "integer", required=True),
            ),
        ),
        _ro("filter", "complex", required=True, sub=(_SUPPORTED, _ro("maxResults", "integer", required=True))),
        _ro("changePassword", "complex", required=True, sub=(_SUPPORTED,)),
        _ro("sort", "complex", required=True, sub=(_SUPPORTED,)),
        _ro("etag", "complex", required=True, sub=(_SUPPORTED,)),
        _ro(
            "authenticationSchemes",
            "complex",
            multi=True,
            required=True,
            sub=(
                _ro("type", required=True, canonical=("oauthbearertoken",)),
                _ro("name", required=True),
                _ro("description", required=True),
                _ro("specUri", "reference", reference_types=("external",)),
                _ro("documentationUri", "reference", reference_types=("external",)),
                _ro("primary", "boolean"),
            ),
        ),
    ),
)
RESOURCE_TYPE_SCHEMA = Schema(
    RESOURCE_TYPE,
    "ResourceType",
    "Specifies the schema that describes a SCIM resource type",
    (
        _ro("id"),
        _ro("name", required=True),
        _ro("description"),
        _ro("endpoint", "reference", required=True, reference_types=("uri",)),
        _ro("schema", "reference", required=True, case_exact=True, reference_types=("uri",)),
        _ro(
            "schemaExtensions",
            "complex",
            multi=True,
            sub=(
                _ro("schema", "reference", required=True, case_exact=True, reference_types=("uri",)),
                _ro("required", "boolean", required=True),
            ),
        ),
    ),
)
_ATTRIBUTE_FIELDS = (
    _ro("name", required=True, case_exact=True),
    _ro(
        "type", required=True, canonical=("string", "complex", "boolean", "decimal", "integer", "dateTime", "reference")
    ),
    _ro("multiValued", "boolean", required=True),
    _ro("description"),
    _ro("required", "boolean"),
    _ro("canonicalValues", multi=True),
    _ro("caseExact", "boolean"),
    _ro("mutability", canonical=("readOnly", "readWrite", "immutable", "writeOnly")),
    _ro("returned", canonical=("always", "never", "default", "request")),
    _ro("uniqueness", canonical=("none", "server", "global")),
    _ro("referenceTypes", multi=True),
)
SCHEMA_SCHEMA = Schema(
    SCHEMA,
    "Schema",
    "Specifies the schema attribute",
    (
        _ro("id", required=True),
        _ro("name"),
        _ro("description"),
        _ro(
            "attributes",
            "complex",
            multi=True,
            required=True,
            sub=(*_ATTRIBUTE_FIELDS, _ro("subAttributes", "complex", multi=True, sub=_ATTRIBUTE_FIELDS)),
        ),
    ),
)

SCHEMAS = (USER, ENTERPRISE_USER, GROUP, SERVICE_PROVIDER_CONFIG_SCHEMA, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA)
# Which schemas a resource's attributes come from (its core schema, then its extensions).
USER_SCHEMAS = (USER, ENTERPRISE_USER)
GROUP_SCHEMAS = (GROUP,)


def resource_types(base_url: str) -> list[dict]:
    def one(name: str, endpoint: str, schema: str, description: str, extensions=()) -> dict:
        resource = {
            "schemas": [RESOURCE_TYPE],
            "id": name,
            "name": name,
            "endpoint": endpoint,
            "description": description,
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}ResourceTypes/{name}"},
        }
        if extensions:
            resource["schemaExtensions"] = [{"schema": s, "required": False} for s in extensions]
        return resource

    return [
        one("User", "/Users", USER_SCHEMA, "A person", [ENTERPRISE_USER_SCHEMA]),
        one("Group", "/Groups", GROUP_SCHEMA, "A group of people"),
    ]
