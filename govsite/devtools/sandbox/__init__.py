"""A stand-in LiteLLM proxy for the demo and the tests, run as its own process.

    python -m govsite.devtools.sandbox --port 4000 --db var/sandbox.sqlite3 --master-key sk-...
    python manage.py sandbox_gateway --port 4000

What it emulates (shapes read from litellm 1.106.2's proxy source and real captured payloads):

- The admin API subset govsite uses, with the same paths, JSON and error shapes: POST /key/generate,
  /key/update, /key/delete, /key/block, /key/unblock; GET /key/info, /key/list; POST /team/new,
  /team/update; GET /team/info; POST /user/new; GET /spend/logs/v2; GET /health/liveliness.
  Admin calls need `Authorization: Bearer <master key>`. Bodies are validated with litellm's own
  pydantic request models (a failure answers 422 `{"detail": [...]}`; unknown fields are dropped,
  as LiteLLM does). Management errors are `{"error": {"message", "type", "param", "code"}}`.
- Virtual keys: secrets "sk-" + urlsafe random (or the caller's `key`), stored only as sha256 hex,
  globally unique `key_alias`, `duration` -> `expires`, `budget_duration` -> spend reset at
  `budget_reset_at` (litellm's own standardized reset times), block/unblock, delete (deleted keys
  stay readable through /key/info with status "deleted", and their alias becomes free).
- POST /chat/completions and /v1/chat/completions for virtual keys and the master key, refusing in
  LiteLLM's order: unknown key 401, blocked 401, model not allowed 403, expired 401, over budget
  422 `budget_exceeded` (litellm.budget_exceeded_status_code), rpm_limit 429. Answers come from
  litellm's mock path (`mock_response`), streamed as real SSE when `stream` is true; cost from
  litellm's price map (`cost_per_token`).
- One LiteLLM_SpendLogs-shaped row per call, success or refusal of a known key (`make_spend_row`),
  written by a batch writer like LiteLLM's: it appears `--spend-log-batch-seconds` (LiteLLM: 10-15 s)
  after the call, with its startTime unchanged. Streamed calls are priced like any other, with or
  without `stream_options.include_usage`, as LiteLLM prices the response it rebuilds from the chunks.
- /spend/logs/v2 answers as LiteLLM's handler serialises: its list columns only, `metadata` an object,
  `request_tags` JSON text, times at millisecond precision (PostgreSQL timestamp(3)).
- The admin API's surprises: a /key/generate with a secret already held answers 200 and keeps the old
  key; `--disable-custom-api-keys` answers 403 to a caller's secret; /key/generate creates no user;
  /key/delete echoes the list it was given; `--no-database` answers as a proxy without DATABASE_URL
  (/spend/logs/v2 a 401). Tests flip these with the test-only POST /sandbox/settings and write the
  waiting spend rows at once with POST /sandbox/spend-logs/flush.

What it does not emulate: organisations, projects, team members and their budgets, user budgets,
tpm/parallel-request limits, guardrails, caching, routing/fallbacks, Enterprise features (key `tags`
answer LiteLLM's licence error), the order of rows that tie in /spend/logs/v2 (LiteLLM leaves it to
PostgreSQL; the sandbox breaks ties by request_id), and the UI routes. Everything lives in one SQLite
file (WAL); the process keeps only the spend rows waiting for their batch (lost if killed, as in
LiteLLM), its settings and the test-only fault switch (POST /sandbox/faults).

The package by concern: `store` (SQLite, constants, time, litellm loaded late), `validation` (LiteLLM's
error shapes, request bodies through litellm's models), `keys` and `teams` (the admin routes),
`spend_logs` (the row builder, the writer, /spend/logs/v2), `chat` (the LLM route and its refusals),
`server` (HTTP plumbing, routing, the fault switch).
"""

from govsite.devtools.sandbox.server import SandboxServer, main, serve
from govsite.devtools.sandbox.spend_logs import insert_spend_rows, make_spend_row
from govsite.devtools.sandbox.store import MODEL_MAP, SPEND_LOG_COLUMNS

__all__ = ["MODEL_MAP", "SPEND_LOG_COLUMNS", "SandboxServer", "insert_spend_rows", "main", "make_spend_row", "serve"]
