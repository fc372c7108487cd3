"""Synthetic history for the demo: weeks of gateway traffic of the demo org's keys, as LiteLLM spend-log rows.

The rows go through the real ingest (budgets.ingest), so the ledger, the rollups, the budgets and their
alerts are exactly what real traffic would make of them. Who is heavy, light or stopped after a few
weeks, which tools and models they use, and the project tags are drawn from a seeded generator: the same
seed makes the same history.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from budgets.pricing import compute_cost
from govsite.devtools.sandbox import MODEL_MAP, make_spend_row

# What each client tool sends as its User-Agent (budgets.normalize tells the tools apart by it).
USER_AGENTS = {
    "claude-code": "claude-cli/2.0.1 (external, cli)",
    "codex": "codex_cli_rs/0.40.0",
    "kimi": "kimi-cli/1.2",
    "openai-sdk": "OpenAI/Python 1.99.0",
    "other": "curl/8.5.0",
}
# (model group, share of requests, typical latency in ms); names the demo's model policy holds
MODELS = [
    ("gpt-4o", 30, 2600),
    ("gpt-4o-mini", 25, 900),
    ("claude-haiku-4-5", 25, 1300),
    ("kimi-k2.5", 15, 3100),
    ("acme-internal-llm", 5, 700),
]
WORKFLOWS = ["code-review", "refactor", "tests", "docs", "incident"]
RATE_LIMITED, BUDGET_REFUSED = 0.02, 0.004
# The error information LiteLLM logs for a refused or failed call.
ERRORS = {
    "rate_limit": {
        "error_code": "429",
        "error_class": "RateLimitError",
        "normalized_error": "429_RATE_LIMIT_EXCEEDED",
        "error_message": "Rate limit exceeded",
    },
    "budget": {
        "error_code": "400",
        "error_class": "BudgetExceededError",
        "normalized_error": "429_BUDGET_EXCEEDED",
        "error_message": "Budget has been exceeded!",
    },
    "provider": {"error_code": "500", "error_class": "InternalServerError", "error_message": "upstream failed"},
}


@dataclass(frozen=True)
class KeyHabits:
    """How one key is used: on what share of weekdays, how many requests a day, with which tools."""

    token_hash: str
    alias: str
    project: str
    activity: float  # share of weekdays with requests
    per_day: int  # typical requests on an active day
    tools: tuple[str, ...]  # the first is the person's usual tool
    stops_after: int | None = None  # days of history after which the person stopped using it


def habits_for(token_hash: str, alias: str, project: str, rng: random.Random) -> KeyHabits:
    """A person's habits: most use AI most days, some a little, a few tried it and stopped."""
    kind = rng.choices(["daily", "regular", "light", "stopped"], [35, 30, 20, 15])[0]
    activity = {"daily": 0.9, "regular": 0.6, "light": 0.25, "stopped": 0.8}[kind]
    usual = rng.choices(list(USER_AGENTS), [45, 25, 8, 15, 7])[0]
    other = rng.choice([tool for tool in USER_AGENTS if tool != usual])
    return KeyHabits(
        token_hash=token_hash,
        alias=alias,
        project=project,
        activity=activity,
        per_day=rng.randint(4, 30),
        tools=(usual, other) if rng.random() < 0.5 else (usual,),
        stops_after=rng.randint(7, 21) if kind == "stopped" else None,
    )


def history(keys: list[KeyHabits], *, days: int, today: date, rng: random.Random) -> Iterator[dict]:
    """LiteLLM spend-log rows for `days` days up to yesterday, oldest first."""
    first = today - timedelta(days=days)
    models, shares = [m[0] for m in MODELS], [m[1] for m in MODELS]
    latency = {m[0]: m[2] for m in MODELS}
    for offset in range(days):
        day = first + timedelta(days=offset)
        weekend = day.weekday() >= 5
        for habits in keys:
            if habits.stops_after is not None and offset > habits.stops_after:
                continue
            if rng.random() >= habits.activity * (0.15 if weekend else 1.0):
                continue
            for _ in range(max(1, int(rng.gauss(habits.per_day, habits.per_day / 3)))):
                yield _row(habits, day, rng, rng.choices(models, shares)[0], latency)


def _row(habits: KeyHabits, day: date, rng: random.Random, model: str, latency: dict[str, int]) -> dict:
    start = datetime.combine(day, time(8), tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10 * 3600))
    took = max(40, int(latency[model] * math.exp(0.5 * rng.gauss(0, 1))))
    tool = habits.tools[0] if len(habits.tools) == 1 or rng.random() < 0.75 else habits.tools[1]
    roll = rng.random()
    error = "rate_limit" if roll < RATE_LIMITED else "budget" if roll < RATE_LIMITED + BUDGET_REFUSED else None
    prompt = 0 if error else int(4_000 + rng.random() ** 2 * 80_000)
    completion = 0 if error else int(150 + rng.random() ** 2 * 2_500)
    # Streamed calls reach the gateway without usage, so it logs $0; the ledger reprices them.
    stream = tool in ("claude-code", "codex") and rng.random() < 0.5
    priced = (
        None
        if stream or error
        else compute_cost(
            model=MODEL_MAP.get(model, model), model_group=model, prompt_tokens=prompt, completion_tokens=completion
        )
    )
    tags = []
    if rng.random() < 0.6:
        tags.append(f"project:{habits.project}")
        if rng.random() < 0.4:
            tags.append(f"workflow:{rng.choice(WORKFLOWS)}")
    return make_spend_row(
        request_id=f"demo-{habits.alias}-{start:%Y%m%d%H%M%S}-{rng.getrandbits(32):08x}",
        start_time=start,
        end_time=start + timedelta(milliseconds=took),
        api_key=habits.token_hash,
        key_alias=habits.alias,
        model_group=model,
        spend=float(priced or 0),
        prompt_tokens=prompt,
        completion_tokens=completion,
        status="failure" if error else "success",
        user_agent=USER_AGENTS[tool],
        tags=tags,
        error_information=ERRORS[error] if error else None,
        stream=stream,
    )
