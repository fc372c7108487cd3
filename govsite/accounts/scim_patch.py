"""Reading SCIM attribute values against the schemas (POST/PUT bodies) and PATCH (RFC 7644 §3.5.2), on a plain
dict of the resource's attributes. Nothing here writes: the views hand the result to a service.

A document is {attribute name: value} with the core schema's attributes (and `externalId`) at the top and
each extension's under its URN, names spelt as the schema spells them; an unassigned attribute is absent.
"""

from __future__ import annotations

import re
from copy import deepcopy
from typing import Any

from govsite.accounts.scim_errors import ScimError
from govsite.accounts.scim_schema import IMMUTABLE, READ_ONLY, Attr, Schema

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# Common attributes (RFC 7643 §3.1): in every resource, in no schema.
COMMON = {"id": Attr("id", mutability=READ_ONLY), "meta": Attr("meta", "complex", mutability=READ_ONLY)}
EXTERNAL_ID = Attr("externalId", case_exact=True)


def boolean(value: Any, name: str) -> bool:
    # Entra ID sends booleans in PATCH values as the strings "True"/"False".
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise ScimError(400, f"{name} must be true or false.", "invalidValue")


def _scalar(attr: Attr, value: Any, where: str) -> Any:
    if attr.type == "boolean":
        return boolean(value, where)
    if attr.type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ScimError(400, f"{where} must be an integer.", "invalidValue")
    if not isinstance(value, str):
        raise ScimError(400, f"{where} must be a string.", "invalidValue")
    return value


def _single(attr: Attr, value: Any, where: str) -> Any:
    if value is None:
        return None
    if attr.type != "complex":
        return _scalar(attr, value, where)
    if not isinstance(value, dict):
        raise ScimError(400, f"{where} must be an object.", "invalidValue")
    out = {}
    for key, item in value.items():
        sub = attr.child(key)
        # Read-only sub-attributes a client sends (a member's display...) are ignored (RFC 7643 §7), and so
        # are sub-attributes the schema does not define.
        if sub is None or sub.mutability == READ_ONLY:
            continue
        cleaned = _single(sub, item, f"{where}.{sub.name}")
        if cleaned is not None and cleaned != "":
            out[sub.name] = cleaned
    return out or None


def clean_value(attr: Attr, value: Any, where: str = "") -> Any:
    """`value` checked against `attr`; None when it leaves the attribute unassigned."""
    where = where or attr.name
    if value is None:
        return None
    if not attr.multi:
        return _single(attr, value, where)
    items = value if isinstance(value, list) else [value]
    cleaned = [c for c in (_single(attr, item, where) for item in items) if c is not None]
    if sum(1 for c in cleaned if isinstance(c, dict) and c.get("primary") is True) > 1:
        raise ScimError(400, f'Only one of {where} may be "primary".', "invalidValue")
    return cleaned or None


def _put(container: dict, key: str, value: Any) -> None:
    if value is None or value == "" or value == [] or value == {}:
        container.pop(key, None)
    else:
        container[key] = value


def clean_resource(body: dict, schemas: tuple[Schema, ...]) -> dict:
    """A POST or PUT body as a document. Read-only attributes (id, meta, groups) and attributes no schema
    defines (Okta's `password`, Entra ID's `roles`) are ignored."""
    core, *extensions = schemas
    doc: dict = {}
    for key, value in body.items():
        if key.lower() == "externalid":
            _put(doc, EXTERNAL_ID.name, clean_value(EXTERNAL_ID, value))
            continue
        extension = next((s for s in extensions if s.id.lower() == key.lower()), None)
        if extension is not None:
            if not isinstance(value, dict):
                raise ScimError(400, f"{extension.id} must be an object.", "invalidValue")
            part: dict = {}
            for name, item in value.items():
                attr = extension.attribute(name)
                if attr is not None and attr.mutability != READ_ONLY:
                    _put(part, attr.name, clean_value(attr, item))
            _put(doc, extension.id, part)
            continue
        attr = core.attribute(key)
        if attr is not None and attr.mutability != READ_ONLY:
            if attr.multi and value is not None and not isinstance(value, list):
                # A PATCH may carry one value of a multi-valued attribute; a whole resource lists them.
                raise ScimError(400, f"{attr.name} must be a list.", "invalidValue")
            _put(doc, attr.name, clean_value(attr, value))
    return doc


# --- value filters: `type eq "work"`, `value eq "5"`, `primary eq true`, joined by and / or ------------------

_CLAUSE = re.compile(
    r"^\s*(?P<attr>[A-Za-z$][\w$]*)\s+(?:(?P<op>eq|ne|co|sw|ew|gt|ge|lt|le)\s+"
    r'(?P<value>"(?:[^"\\]|\\.)*"|true|false|null|-?\d+(?:\.\d+)?)|(?P<pr>pr))\s*$',
    re.IGNORECASE,
)
_OR = re.compile(r'\s+or\s+(?=(?:[^"]*"[^"]*")*[^"]*$)', re.IGNORECASE)
_AND = re.compile(r'\s+and\s+(?=(?:[^"]*"[^"]*")*[^"]*$)', re.IGNORECASE)


def literal(raw: str) -> Any:
    lowered = raw.lower()
    if raw.startswith('"'):
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered == "null":
        return None
    return float(raw) if "." in raw else int(raw)


def _compare(op: str, have: Any, want: Any, case_exact: bool) -> bool:
    if isinstance(have, str) and isinstance(want, str) and not case_exact:
        have, want = have.lower(), want.lower()
    if op == "eq":
        return have == want
    if op == "ne":
        return have != want
    if not isinstance(have, str) or not isinstance(want, str):
        return False
    return {
        "co": want in have,
        "sw": have.startswith(want),
        "ew": have.endswith(want),
        "gt": have > want,
        "ge": have >= want,
        "lt": have < want,
        "le": have <= want,
    }[op]


def value_filter(attr: Attr, expression: str):
    """A predicate over the values of the multi-valued `attr`; `invalidFilter` when it cannot be read."""
    if re.search(r"[()\[\]]|\bnot\b", re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression), re.IGNORECASE):
        raise ScimError(400, f"Cannot read the filter {expression!r}: no parentheses or not.", "invalidFilter")
    alternatives = []
    for part in _OR.split(expression):
        clauses = []
        for clause in _AND.split(part):
            match = _CLAUSE.match(clause)
            sub = attr.child(match["attr"]) if match else None
            if match is None or sub is None:
                raise ScimError(400, f"Cannot read the filter {clause.strip()!r} on {attr.name}.", "invalidFilter")
            clauses.append((sub, (match["op"] or "pr").lower(), literal(match["value"]) if match["value"] else None))
        alternatives.append(clauses)

    def matches(item: Any) -> bool:
        item = item if isinstance(item, dict) else {"value": item}
        return any(
            all(
                (item.get(sub.name) not in (None, "", []))
                if op == "pr"
                else _compare(op, item.get(sub.name), want, sub.case_exact)
                for sub, op, want in clauses
            )
            for clauses in alternatives
        )

    matches.created = _created(alternatives)  # type: ignore[attr-defined]
    return matches


def _created(alternatives) -> dict | None:
    """The value an `add`/`replace` through an unmatched `attr[sub eq "x"]` creates (Entra ID's
    `emails[type eq "work"].value` on a person without a work email), or None when the filter names none."""
    if len(alternatives) != 1 or any(op != "eq" for _, op, _ in alternatives[0]):
        return None
    return {sub.name: want for sub, _, want in alternatives[0]}


# --- PATCH ------------------------------------------------------------------------------------------------

_PATH = re.compile(r"^(?P<attr>[A-Za-z$][\w$-]*)(?:\[(?P<filter>[^\]]*)\])?(?:\.(?P<sub>[A-Za-z$][\w$-]*))?$")


def operations(body: Any) -> list[tuple[str, str, Any]]:
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object.", "invalidSyntax")
    if not isinstance(body.get("schemas"), list) or PATCH_OP not in body["schemas"]:
        raise ScimError(400, f'"schemas" must list {PATCH_OP}.', "invalidSyntax")
    ops = body.get("Operations")
    if not isinstance(ops, list) or not ops:
        raise ScimError(400, "Operations must be a non-empty list.", "invalidSyntax")
    parsed = []
    for operation in ops:
        if not isinstance(operation, dict):
            raise ScimError(400, "Each operation must be an object.", "invalidSyntax")
        op = str(operation.get("op", "")).lower()  # Entra ID capitalises: "Replace"
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


class Patcher:
    """Applies PATCH operations to a copy of a document, with the resource's schemas."""

    def __init__(self, doc: dict, schemas: tuple[Schema, ...], *, resource_id: str):
        self.doc = deepcopy(doc)
        self.core, *self.extensions = schemas
        self.resource_id = resource_id

    def apply(self, body: Any) -> dict:
        for op, path, value in operations(body):
            if path:
                self._path_op(op, path, value)
                continue
            if not isinstance(value, dict):
                raise ScimError(400, f"{op} without a path needs an object value.", "invalidValue")
            for key, item in value.items():
                extension = self._extension(key)
                if extension is not None and isinstance(item, dict):
                    for name, sub_item in item.items():
                        self._path_op(op, f"{extension.id}:{name}", sub_item)
                elif key.lower() == "schemas":
                    continue
                elif key.lower() == "id" and str(item) == self.resource_id:
                    continue  # Okta repeats the id in a group rename: the same value changes nothing
                else:
                    self._path_op(op, key, item)
        return self.doc

    def _extension(self, key: str) -> Schema | None:
        return next((s for s in self.extensions if s.id.lower() == key.lower()), None)

    def _target(self, path: str) -> tuple[dict, Attr, str, Attr | None]:
        schema, rest = self.core, path
        for candidate in (self.core, *self.extensions):
            if path.lower().startswith(candidate.id.lower() + ":"):
                schema, rest = candidate, path[len(candidate.id) + 1 :]
                break
        else:
            if path.lower().startswith("urn:"):
                raise ScimError(400, f"No attribute {path!r}: govsite does not serve that schema.", "invalidPath")
        match = _PATH.match(rest)
        if match is None:
            raise ScimError(400, f"Cannot read the path {path!r}.", "invalidPath")
        name = match["attr"]
        attr = schema.attribute(name)
        if attr is None and schema is self.core:
            attr = COMMON.get(name.lower()) or (EXTERNAL_ID if name.lower() == "externalid" else None)
        if attr is None:
            raise ScimError(400, f"No attribute {name!r} in {schema.name}.", "invalidPath")
        if attr.mutability == READ_ONLY:
            raise ScimError(400, f"{path} is read-only.", "mutability")
        sub = None
        if match["sub"]:
            sub = attr.child(match["sub"])
            if sub is None:
                raise ScimError(400, f"No sub-attribute {match['sub']!r} in {attr.name}.", "invalidPath")
        if match["filter"] is not None and not attr.multi:
            raise ScimError(400, f"{attr.name} is single-valued: no filter.", "invalidPath")
        if attr.mutability == READ_ONLY or (sub is not None and sub.mutability == READ_ONLY):
            raise ScimError(400, f"{path} is read-only.", "mutability")
        container = self.doc if schema is self.core else self.doc.setdefault(schema.id, {})
        return container, attr, match["filter"] or "", sub

    def _path_op(self, op: str, path: str, value: Any) -> None:
        container, attr, expression, sub = self._target(path)
        where = f"{attr.name}{'.' + sub.name if sub else ''}"
        if op == "remove":
            self._remove(container, attr, expression, sub, value)
        elif attr.multi:
            self._set_multi(op, container, attr, expression, sub, value, where)
        elif sub is not None:
            part = dict(container.get(attr.name) or {})
            _put(part, sub.name, clean_value(sub, value, where))
            _put(container, attr.name, part)
        elif attr.type == "complex":
            # add and replace on a complex attribute set the sub-attributes given, keep the others (§3.5.2.3)
            part = dict(container.get(attr.name) or {})
            for key, item in (clean_value(attr, value, where) or {}).items():
                part[key] = item
            _put(container, attr.name, part)
        else:
            _put(container, attr.name, clean_value(attr, value, where))
        for key in [k for k, v in self.doc.items() if v == {}]:
            self.doc.pop(key)

    def _remove(self, container: dict, attr: Attr, expression: str, sub: Attr | None, value: Any) -> None:
        if attr.required or attr.name == "active":
            raise ScimError(400, f"{attr.name} is required and cannot be removed.", "mutability")
        if not attr.multi:
            if sub is None:
                container.pop(attr.name, None)
            else:
                part = dict(container.get(attr.name) or {})
                part.pop(sub.name, None)
                _put(container, attr.name, part)
            return
        items = list(container.get(attr.name) or [])
        if expression:
            matches = value_filter(attr, expression)
            chosen = [i for i in items if matches(i)]
        elif value is not None:
            # Entra ID removes members with a value list: {"path": "members", "value": [{"value": "<id>"}]}
            wanted = {
                str(v.get("value") if isinstance(v, dict) else v)
                for v in (value if isinstance(value, list) else [value])
            }
            chosen = [i for i in items if str(i.get("value")) in wanted]
        else:
            chosen = items
        if sub is None:
            items = [i for i in items if i not in chosen]
        else:
            items = [{k: v for k, v in i.items() if k != sub.name} if i in chosen else i for i in items]
        _put(container, attr.name, [i for i in items if i])

    def _set_multi(self, op, container, attr: Attr, expression: str, sub: Attr | None, value, where) -> None:
        items = [dict(i) for i in container.get(attr.name) or []]
        before = [i for i in items if i.get("primary") is True]
        if expression or sub is not None:
            matches = value_filter(attr, expression) if expression else (lambda _item: True)
            chosen = [i for i in items if matches(i)]
            if not chosen:
                created = getattr(matches, "created", None) if expression else {}
                if created is None:
                    raise ScimError(400, f"No value of {attr.name} matches {expression!r}.", "noTarget")
                items.append(dict(created))
                chosen = [items[-1]]
            if sub is not None:
                self._check_immutable(op, sub, chosen)
                new = clean_value(sub, value, where)
                for item in chosen:
                    _put(item, sub.name, new)
            else:
                new = clean_value(attr, value if isinstance(value, list) else [value], where) or []
                replacement = new[0] if new else {}
                for item in chosen:
                    if op == "replace":
                        item.clear()
                    item.update(replacement)
        else:
            new = clean_value(attr, value, where) or []
            if op == "replace":
                items = new
            else:
                items += [i for i in new if i not in items]
        items = [i for i in items if i]
        primaries = [i for i in items if i.get("primary") is True]
        if len(primaries) > 1:  # a new primary value demotes the one before (§3.5.2)
            for item in primaries:
                if any(item is b for b in before) or item in before:
                    item["primary"] = False
                    if len([i for i in items if i.get("primary") is True]) == 1:
                        break
        _put(container, attr.name, items)

    @staticmethod
    def _check_immutable(op: str, sub: Attr, chosen: list[dict]) -> None:
        if sub.mutability == IMMUTABLE and op == "replace" and any(sub.name in i for i in chosen):
            raise ScimError(400, f"{sub.name} cannot be changed once set.", "mutability")
