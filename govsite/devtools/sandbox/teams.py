"""Teams and users: the /team/* and /user/new admin routes."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from govsite.devtools.sandbox.keys import apply_durations, create_key, no_database, reset_due_budgets
from govsite.devtools.sandbox.store import DATABASE_NOT_CONNECTED, Transaction, iso
from govsite.devtools.sandbox.validation import Request, detail_error, proxy_error

# --- teams and users


def team_row(conn: sqlite3.Connection, team_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT record, spend FROM teams WHERE team_id = ?", (team_id,)).fetchone()
    return None if row is None else {**json.loads(row["record"]), "spend": row["spend"]}


def team_new(req: Request) -> dict:
    fields = req.validated("NewTeamRequest")
    no_database(req)
    team_id = fields.get("team_id") or str(uuid.uuid4())
    record: dict[str, Any] = {
        "team_id": team_id,
        "team_alias": None,
        "organization_id": None,
        "admins": [],
        "members": [],
        "members_with_roles": [],
        "metadata": {},
        "tpm_limit": None,
        "rpm_limit": None,
        "max_budget": None,
        "soft_budget": None,
        "budget_duration": None,
        "budget_reset_at": None,
        "models": [],
        "blocked": False,
        "spend": 0.0,
        "model_spend": {},
        "created_at": iso(req.now),
        "updated_at": iso(req.now),
    }
    record.update({k: v for k, v in fields.items() if k != "budget_duration"})
    record["team_id"] = team_id
    apply_durations(record, fields, req.now)
    with Transaction(req.conn):
        if team_row(req.conn, team_id) is not None:
            raise detail_error(400, {"error": f"Team id = {team_id} already exists. Please use a different team id."})
        req.conn.execute("INSERT INTO teams (team_id, spend, record) VALUES (?, 0, ?)", (team_id, json.dumps(record)))
    return record


def team_update(req: Request) -> dict:
    fields = req.validated("UpdateTeamRequest")
    no_database(req)
    with Transaction(req.conn):
        record = team_row(req.conn, fields["team_id"])
        if record is None:
            raise detail_error(404, {"error": f"Team not found, passed team_id={fields['team_id']}"})
        record.update({k: v for k, v in fields.items() if k != "budget_duration"})
        apply_durations(record, fields, req.now)
        record["updated_at"] = iso(req.now)
        req.conn.execute("UPDATE teams SET record = ? WHERE team_id = ?", (json.dumps(record), record["team_id"]))
    return {"team_id": record["team_id"], "data": record}


def team_info(req: Request) -> dict:
    if not req.settings.database:
        raise proxy_error(500, repr({"error": DATABASE_NOT_CONNECTED}), "auth_error", "None")
    team_id = req.query.get("team_id")
    if not team_id:
        raise proxy_error(422, repr({"message": "Malformed request. No team id passed in."}), "auth_error", "None")
    reset_due_budgets(req.conn, req.now)
    record = team_row(req.conn, team_id)
    if record is None:
        raise proxy_error(404, repr({"message": f"Team not found, passed team id: {team_id}."}), "auth_error", "None")
    keys = [
        {**json.loads(row["record"]), "spend": row["spend"]}
        for row in req.conn.execute("SELECT record, spend FROM keys WHERE team_id = ? ORDER BY created_at", (team_id,))
    ]
    return {"team_id": team_id, "team_info": record, "keys": keys, "team_memberships": []}


def user_new(req: Request) -> dict:
    fields = req.validated("NewUserRequest")
    no_database(req)
    user_id = fields.get("user_id") or str(uuid.uuid4())
    with Transaction(req.conn):
        if req.conn.execute("SELECT 1 FROM users WHERE user_id = ?", (user_id,)).fetchone():
            raise detail_error(409, {"error": f"User with id {user_id} already exists"})  # LiteLLM's wording
        email = fields.get("user_email")
        if email and req.conn.execute("SELECT 1 FROM users WHERE lower(user_email) = lower(?)", (email,)).fetchone():
            raise detail_error(409, {"error": f"User with email {email} already exists"})
        record = {
            "user_id": user_id,
            "user_email": email,
            "user_alias": fields.get("user_alias"),
            "user_role": fields.get("user_role") or "internal_user",
            "teams": fields.get("teams") or [],
            "max_budget": fields.get("max_budget"),
            "metadata": fields.get("metadata") or {},
            "created_at": iso(req.now),
        }
        req.conn.execute(
            "INSERT INTO users (user_id, user_email, record) VALUES (?, ?, ?)", (user_id, email, json.dumps(record))
        )
        key = None
        if fields.get("auto_create_key", True):
            key_fields = {
                k: fields[k] for k in ("models", "duration", "key_alias", "metadata", "team_id") if k in fields
            }
            key = create_key(req.conn, {**key_fields, "user_id": user_id}, req.now)["key"]
    return {**record, "key": key, "expires": None}
