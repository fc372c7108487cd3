"""The virtual-key store and the /key/* admin routes."""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from govsite.devtools.sandbox.store import (
    CUSTOM_KEYS_DISABLED,
    DB_NOT_CONNECTED,
    KEY_LIST_MAX_SIZE,
    MASTER_KEY_USER_ID,
    MIN_CUSTOM_KEY_LENGTH,
    NOT_PREMIUM,
    Transaction,
    abbreviate,
    duration_seconds,
    hash_if_needed,
    hash_token,
    iso,
    next_budget_reset,
    parse_iso,
)
from govsite.devtools.sandbox.validation import ApiError, Request, detail_error, proxy_error

# --- keys


def key_row(conn: sqlite3.Connection, token: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT record, spend FROM keys WHERE token = ?", (token,)).fetchone()
    if row is None:
        return None
    return {**json.loads(row["record"]), "spend": row["spend"]}


def save_key(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE keys SET key_alias = ?, user_id = ?, team_id = ?, spend = ?, record = ? WHERE token = ?",
        (
            record.get("key_alias"),
            record.get("user_id"),
            record.get("team_id"),
            record.get("spend") or 0.0,
            json.dumps(record),
            record["token"],
        ),
    )


def _key_status(record: dict[str, Any], now: datetime) -> str:
    if record.get("deleted_at"):
        return "deleted"
    if record.get("blocked") is True:
        return "revoked"
    if record.get("expires") and parse_iso(record["expires"]) < now:
        return "expired"
    return "active"


def _alias_taken(conn: sqlite3.Connection, alias: str | None, except_token: str | None = None) -> bool:
    if alias is None:
        return False
    row = conn.execute("SELECT token FROM keys WHERE key_alias = ?", (alias,)).fetchone()
    return row is not None and row["token"] != except_token


def _alias_conflict(alias: str) -> ApiError:
    return proxy_error(
        400,
        f"Key with alias '{alias}' already exists. Unique key aliases across all keys are required.",
        "bad_request_error",
        "key_alias",
    )


def _refuse_tags(fields: dict[str, Any]) -> None:
    # LiteLLM raises a ValueError here, which its handler turns into a 500.
    if fields.get("tags") is not None:
        raise proxy_error(500, f"Only premium users can add tags to keys. {NOT_PREMIUM}", "internal_server_error")


def apply_durations(record: dict[str, Any], fields: dict[str, Any], now: datetime) -> None:
    try:
        if "duration" in fields:
            duration = fields["duration"]
            record["expires"] = None if duration is None else iso(now + timedelta(seconds=duration_seconds(duration)))
        if "budget_duration" in fields:
            duration = fields["budget_duration"]
            record["budget_duration"] = duration
            record["budget_reset_at"] = None if duration is None else next_budget_reset(duration, now)
    except ValueError as exc:
        raise proxy_error(500, str(exc), "internal_server_error") from exc


def no_database(req: Request, message: str = DB_NOT_CONNECTED) -> None:
    """A proxy started without DATABASE_URL refuses every admin route that needs its tables (500)."""
    if not req.settings.database:
        raise detail_error(500, {"error": message})


def create_key(
    conn: sqlite3.Connection, fields: dict[str, Any], now: datetime, *, custom_keys_allowed: bool = True
) -> dict[str, Any]:
    """LiteLLM's order (key_management_endpoints._common_key_generation_helper): the alias must be free,
    then a caller's own secret must be allowed and well formed. It never creates the key's user."""
    _refuse_tags(fields)
    if _alias_taken(conn, fields.get("key_alias")):
        raise _alias_conflict(fields["key_alias"])
    secret = fields.get("key")
    if secret is not None:
        if not custom_keys_allowed:
            raise detail_error(403, {"error": CUSTOM_KEYS_DISABLED})
        if not secret.startswith("sk-"):
            masked = f"{secret[:4]}****{secret[-4:]}" if len(secret) > 8 else "****"
            raise detail_error(
                400, {"error": f"Invalid key format. LiteLLM Virtual Key must start with 'sk-'. Received: {masked}"}
            )
        if len(secret) < MIN_CUSTOM_KEY_LENGTH:
            raise detail_error(
                400,
                {
                    "error": "Invalid key format. LiteLLM Virtual Key must be at least "
                    f"{MIN_CUSTOM_KEY_LENGTH} characters long."
                },
            )
    else:
        secret = f"sk-{secrets.token_urlsafe(16)}"
    token = hash_token(secret)
    record: dict[str, Any] = {
        "token": token,
        "key_name": abbreviate(secret),
        "key_alias": None,
        "spend": 0.0,
        "max_budget": None,
        "soft_budget": None,
        "expires": None,
        "models": [],
        "aliases": {},
        "config": {},
        "user_id": None,
        "team_id": None,
        "permissions": {},
        "max_parallel_requests": None,
        "metadata": {},
        "blocked": None,
        "tpm_limit": None,
        "rpm_limit": None,
        "budget_duration": None,
        "budget_reset_at": None,
        "allowed_cache_controls": [],
        "model_spend": {},
        "model_max_budget": {},
        "organization_id": None,
        "created_at": iso(now),
        "updated_at": iso(now),
        "last_active": None,
        "created_by": MASTER_KEY_USER_ID,
        "updated_by": MASTER_KEY_USER_ID,
    }
    record.update({k: v for k, v in fields.items() if k not in ("key", "duration", "budget_duration", "spend")})
    record["spend"] = float(fields.get("spend") or 0.0)
    apply_durations(record, fields, now)
    existing = key_row(conn, token)
    if existing is not None:
        # LiteLLM upserts with an empty update (PrismaClient.insert_data): the row already there stays as
        # it was, and the answer is the request's own fields with that row's token and times — a success
        # that made nothing. Only a look-up shows it.
        kept = {"created_at": existing["created_at"], "updated_at": existing["updated_at"]}
        return {**record, **kept, "key": secret, "token_id": token}
    try:
        conn.execute(
            "INSERT INTO keys (token, key_alias, user_id, team_id, spend, created_at, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                token,
                record["key_alias"],
                record["user_id"],
                record["team_id"],
                record["spend"],
                record["created_at"],
                json.dumps(record),
            ),
        )
    except sqlite3.IntegrityError as exc:  # a concurrent call took the alias
        raise _alias_conflict(record["key_alias"]) from exc
    return {**record, "key": secret, "token_id": token}


def key_generate(req: Request) -> dict:
    fields = req.validated("GenerateKeyRequest")
    no_database(req)
    with Transaction(req.conn):
        return create_key(req.conn, fields, req.now, custom_keys_allowed=not req.settings.disable_custom_api_keys)


def _find_key_for_update(conn: sqlite3.Connection, fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("key") is not None:
        record = key_row(conn, hash_if_needed(fields["key"]))
        if record is None:
            raise proxy_error(404, "Key not found.", "not_found_error", "key")
        return record
    alias = fields["key_alias"]
    rows = conn.execute("SELECT token FROM keys WHERE key_alias = ?", (alias,)).fetchall()
    if not rows:
        raise proxy_error(404, f"Key not found. No key with key_alias='{alias}'.", "not_found_error", "key_alias")
    return key_row(conn, rows[0]["token"])


def key_update(req: Request) -> dict:
    fields = req.validated("UpdateKeyRequest")
    no_database(req)
    _refuse_tags(fields)
    with Transaction(req.conn):
        record = _find_key_for_update(req.conn, fields)
        # key_alias is the identifier when no key is given, otherwise the new alias.
        changes = {k: v for k, v in fields.items() if k not in ("key", "duration", "budget_duration")}
        if fields.get("key") is None:
            changes.pop("key_alias", None)
        if "key_alias" in changes and _alias_taken(req.conn, changes["key_alias"], record["token"]):
            raise _alias_conflict(changes["key_alias"])
        record.update(changes)  # a merge patch; metadata is one field, so it is replaced wholesale
        apply_durations(record, fields, req.now)
        record["updated_at"] = iso(req.now)
        save_key(req.conn, record)
    identifier = fields.get("key") or fields.get("key_alias")
    shown = {
        k: record[k]
        for k in (
            *changes,
            *(("expires",) if "duration" in fields else ()),
            *(("budget_duration", "budget_reset_at") if "budget_duration" in fields else ()),
        )
    }
    return {"key": identifier, **shown}


def key_delete(req: Request) -> dict:
    """LiteLLM's delete_key_fn: `keys` if any were given (then `key_aliases` is ignored), else the aliases;
    404 when none of them exists; otherwise it deletes those that exist and echoes back exactly what it
    was given, so `deleted_keys` does not say which keys were there."""
    fields = req.validated("KeyRequest")
    no_database(req, "Not connected to DB!")
    if fields.get("keys"):
        given = list(fields["keys"])
        tokens = [hash_if_needed(key) for key in given]
    elif fields.get("key_aliases"):
        given = list(fields["key_aliases"])
        placeholders = ", ".join("?" for _ in given)
        tokens = [
            row["token"]
            for row in req.conn.execute(
                f"SELECT token FROM keys WHERE key_alias IN ({placeholders})",  # noqa: S608 - placeholders only
                given,
            )
        ]
    else:
        raise proxy_error(500, "Invalid request type", "internal_server_error")
    with Transaction(req.conn):
        found = [token for token in dict.fromkeys(tokens) if key_row(req.conn, token) is not None]
        if not found:
            raise detail_error(404, {"error": "No keys found"})
        for token in found:
            record = key_row(req.conn, token)
            record["deleted_at"] = iso(req.now)
            req.conn.execute(
                "INSERT OR REPLACE INTO deleted_keys (token, key_alias, spend, deleted_at, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (token, record.get("key_alias"), record["spend"], record["deleted_at"], json.dumps(record)),
            )
            req.conn.execute("DELETE FROM keys WHERE token = ?", (token,))
    return {"deleted_keys": given}


def _set_blocked(req: Request, blocked: bool) -> dict:
    fields = req.validated("BlockKeyRequest")
    no_database(req)
    with Transaction(req.conn):
        record = key_row(req.conn, hash_if_needed(fields["key"]))
        if record is None:
            raise proxy_error(404, "Key not found.", "not_found_error", "key")
        record["blocked"] = blocked
        record["updated_at"] = iso(req.now)
        save_key(req.conn, record)
    return record


def key_block(req: Request) -> dict:
    return _set_blocked(req, True)


def key_unblock(req: Request) -> dict:
    return _set_blocked(req, False)


def reset_due_budgets(conn: sqlite3.Connection, now: datetime) -> None:
    """Zero the spend of keys and teams whose budget period ended (LiteLLM does this on a timer)."""
    with Transaction(conn):
        for table, id_column in (("keys", "token"), ("teams", "team_id")):
            due = conn.execute(
                f"SELECT {id_column} AS id, record FROM {table} "  # noqa: S608 - table names are constants
                "WHERE json_extract(record, '$.budget_reset_at') <= ?",
                (iso(now),),
            ).fetchall()
            for row in due:
                record = json.loads(row["record"])
                record["budget_reset_at"] = next_budget_reset(record["budget_duration"], now)
                conn.execute(
                    f"UPDATE {table} SET spend = 0, record = ? WHERE {id_column} = ?",  # noqa: S608
                    (json.dumps(record), row["id"]),
                )


def key_info(req: Request) -> dict:
    no_database(req)
    key = req.query.get("key")
    if not key:
        raise proxy_error(404, "Key not found in database", "not_found_error", "key")
    reset_due_budgets(req.conn, req.now)
    token = hash_if_needed(key)
    record = key_row(req.conn, token)
    if record is None:
        row = req.conn.execute("SELECT record, spend FROM deleted_keys WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise proxy_error(404, "Key not found in database", "not_found_error", "key")
        record = {**json.loads(row["record"]), "spend": row["spend"]}
    info = {k: v for k, v in record.items() if k != "token"}
    info["status"] = _key_status(record, req.now)
    return {"key": key, "info": info}


def key_list(req: Request) -> dict:
    if not req.settings.database:
        raise proxy_error(500, "Authentication Error, Database not connected", "internal_server_error", "None")
    page = req.int_param("page", 1)
    size = req.int_param("size", 10, le=KEY_LIST_MAX_SIZE)
    reset_due_budgets(req.conn, req.now)
    where, params = [], []
    for name, column in (
        ("user_id", "user_id"),
        ("team_id", "team_id"),
        ("key_alias", "key_alias"),
        ("key_hash", "token"),
    ):
        if req.query.get(name):
            where.append(f"{column} = ?")
            params.append(req.query[name])
    rows = req.conn.execute(
        f"SELECT record, spend FROM keys {'WHERE ' + ' AND '.join(where) if where else ''} "  # noqa: S608
        "ORDER BY created_at DESC, token",
        params,
    ).fetchall()
    records = [{**json.loads(row["record"]), "spend": row["spend"]} for row in rows]
    status = req.query.get("status")
    if status:
        if status not in ("active", "expired", "revoked", "deleted"):
            raise detail_error(
                400, {"error": "Invalid status value. Supported: 'active', 'expired', 'revoked', 'deleted'."}
            )
        records = [r for r in records if _key_status(r, req.now) == status]
    total = len(records)
    window = records[(page - 1) * size : page * size]
    full = req.query.get("return_full_object", "false").lower() == "true"
    return {
        "keys": window if full else [r["token"] for r in window],
        "total_count": total,
        "current_page": page,
        "total_pages": -(-total // size) if total else 0,
    }
