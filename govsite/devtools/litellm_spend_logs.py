"""LiteLLM's unmodified proxy app serving `/spend/logs/v2` from a PostgreSQL `LiteLLM_SpendLogs` table.

The one substitution is the query executor: LiteLLM reaches its database through Prisma, whose query
engine is a binary downloaded on first use — not possible here. `PrismaStandIn` exposes exactly what
`/spend/logs/v2` calls (`prisma_client.db.query_raw(sql, *args)`, LiteLLM's own SQL with `$n`
placeholders) and runs that SQL on PostgreSQL through psycopg's raw cursor (server-side `$n`
parameters, as Prisma's engine sends them). Rows come back the way prisma-client-py returns raw rows:
timestamps as RFC 3339 strings in UTC (the engine's serialisation), JSON columns as their text (the
reason LiteLLM's `_hydrate_spend_log_metadata` exists), bigint as int. Beside it, master-key auth's
user lookup finds no user (an empty `LiteLLM_UserTable`). The stand-in is put in place after the
app's own startup and taken away before its shutdown, which then runs as for a proxy without a database.

The table is created from LiteLLM's installed `schema.prisma` (`spend_logs_ddl`), so a column LiteLLM
adds or retypes reaches the test without anyone copying it.

Run as a program (`python -m govsite.devtools.litellm_spend_logs`) it serves the proxy app with uvicorn:
SPEND_LOGS_DSN names the database, LITELLM_MASTER_KEY the master key, SPEND_LOGS_PORT the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import litellm

SCHEMA = Path(litellm.__file__).parent / "proxy" / "schema.prisma"
TABLE = "LiteLLM_SpendLogs"

_SQL_TYPES = {
    "String": "TEXT",
    "Int": "INTEGER",
    "BigInt": "BIGINT",
    "Float": "DOUBLE PRECISION",
    "Boolean": "BOOLEAN",
    "DateTime": "TIMESTAMP(3)",  # Prisma's PostgreSQL default for DateTime: no time zone, milliseconds
    "Json": "JSONB",
}


def _model_block(schema: str, model: str) -> list[str]:
    match = re.search(r"^model\s+" + re.escape(model) + r"\s*\{(.*?)^\}", schema, re.S | re.M)
    if match is None:
        raise LookupError(f"schema.prisma has no model {model}")
    return [line.split("//")[0].strip() for line in match.group(1).splitlines() if line.split("//")[0].strip()]


def _default(expression: str, sql_type: str) -> str:
    if expression == "now()":
        return "CURRENT_TIMESTAMP"
    if expression.startswith('"'):
        literal = json.loads(expression).replace("'", "''")
        return f"'{literal}'::jsonb" if sql_type == "JSONB" else f"'{literal}'"
    return expression


def spend_logs_ddl(schema_text: str | None = None) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements for LiteLLM_SpendLogs, as `prisma migrate` writes them."""
    lines = _model_block(schema_text if schema_text is not None else SCHEMA.read_text(), TABLE)
    columns, keys, statements = [], [], []
    for line in lines:
        if line.startswith("@@index"):
            fields = re.search(r"\[(.*?)\]", line).group(1)
            names = [name.strip() for name in fields.split(",")]
            index = f"{TABLE}_{'_'.join(names)}_idx"
            quoted = ", ".join(f'"{name}"' for name in names)
            statements.append(f'CREATE INDEX "{index}" ON "{TABLE}"({quoted})')
            continue
        name, prisma_type, *attributes = line.split(None, 2)
        rest = attributes[0] if attributes else ""
        optional = prisma_type.endswith("?")
        sql_type = _SQL_TYPES[prisma_type.rstrip("?")]
        mapped = re.search(r'@map\("([^"]+)"\)', rest)
        column = f'"{mapped.group(1) if mapped else name}" {sql_type}'
        if not optional:
            column += " NOT NULL"
        default = re.search(r"@default\s*\((.*?\)?)\)(?:\s|$)", rest)
        if default:
            column += f" DEFAULT {_default(default.group(1).strip(), sql_type)}"
        if "@id" in rest.split():
            keys.append(name)
        columns.append(column)
    primary_key = ", ".join(f'"{key}"' for key in keys)
    columns.append(f'CONSTRAINT "{TABLE}_pkey" PRIMARY KEY ({primary_key})')
    return [f'CREATE TABLE "{TABLE}" (\n    ' + ",\n    ".join(columns) + "\n)", *statements]


def _rfc3339(value: datetime) -> str:
    # The engine reads a TIMESTAMP(3) as UTC and writes it with chrono's to_rfc3339: fractional
    # digits only when there are any.
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


def _as_prisma_returns(row: dict) -> dict:
    return {key: _rfc3339(value) if isinstance(value, datetime) else value for key, value in row.items()}


def _as_prisma_sends(value: object) -> object:
    # prisma-client-py JSON-encodes the arguments of query_raw; a datetime travels as ISO 8601 text.
    return value.isoformat() if isinstance(value, datetime) else value


class _EmptyUserTable:
    """`prisma_client.db.litellm_usertable`: master-key auth looks its user up there on every call;
    these tests hold no users, so it finds none, as an empty table would."""

    async def find_unique(self, **_query: object) -> None:
        return None


class _Database:
    """`prisma_client.db`: `query_raw`, the one call `/spend/logs/v2` makes, and the user table its auth reads."""

    def __init__(self, dsn: str):
        self._dsn = dsn
        self._connection = None
        self._lock = asyncio.Lock()
        self.litellm_usertable = _EmptyUserTable()

    async def _connect(self):
        import psycopg  # imported here: the module is also imported by tests that only need the DDL
        from psycopg.rows import dict_row
        from psycopg.types.string import TextLoader

        connection = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, row_factory=dict_row)
        for json_type in ("json", "jsonb"):
            connection.adapters.register_loader(json_type, TextLoader)
        return connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def query_raw(self, query: str, *args: object) -> list[dict]:
        from psycopg import AsyncRawCursor  # see _connect

        async with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = await self._connect()
            async with AsyncRawCursor(self._connection) as cursor:
                await cursor.execute(query, [_as_prisma_sends(arg) for arg in args])
                rows = await cursor.fetchall() if cursor.description else []
        return [_as_prisma_returns(row) for row in rows]


class PrismaStandIn:
    """What LiteLLM's handler reads of its PrismaClient: `.db`."""

    def __init__(self, dsn: str):
        self.db = _Database(dsn)


def app_with_database(dsn: str):
    """LiteLLM's proxy app with the stand-in in place of its Prisma client after the app's own startup."""
    from litellm.proxy import proxy_server

    original = proxy_server.app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with original(app) as state:
            stand_in = PrismaStandIn(dsn)
            proxy_server.prisma_client = stand_in
            try:
                yield state
            finally:
                proxy_server.prisma_client = None
                await stand_in.db.close()

    proxy_server.app.router.lifespan_context = lifespan
    return proxy_server.app


def main() -> None:
    import uvicorn

    app = app_with_database(os.environ["SPEND_LOGS_DSN"])
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["SPEND_LOGS_PORT"]), log_level="warning")


if __name__ == "__main__":
    main()
