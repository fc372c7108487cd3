"""The data set of `manage.py bench_dashboards`: a year of a 500-person org and its ledger, made by a seeded
generator (realistic model, tool, tag, error and latency mix; weekday-heavy; people starting through the year)
and streamed into PostgreSQL with COPY ... FROM STDIN."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from budgets.models import Budget, CostSource, ErrorType, SpendRecord
from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, Team, TeamRole, User
from govsite.devtools.demo_traffic import USER_AGENTS
from keys.models import DataClassification, KeyKind, ModelPolicy, VirtualKey

GENERATOR = "copy-1"  # bumped when the generated data changes, so an older data set is not reused
CHUNK = 500_000  # rows between two progress lines
DAYS = 365

# (model, model_group, provider, $ per input token, $ per output token, kind, typical latency ms, share %)
MODELS = [
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", "anthropic", 3e-06, 1.5e-05, "priced", 4200, 34),
    ("openai/gpt-4o", "gpt-4o", "openai", 2.5e-06, 1e-05, "priced", 2600, 20),
    ("openai/gpt-4o-mini", "gpt-4o-mini", "openai", 1.5e-07, 6e-07, "priced", 900, 15),
    ("anthropic/claude-haiku-4-5", "claude-haiku-4-5", "anthropic", 1e-06, 5e-06, "priced", 1300, 12),
    ("gemini/gemini-2.5-pro", "gemini-2.5-pro", "gemini", 1.25e-06, 1e-05, "priced", 5200, 9),
    ("moonshot/kimi-k2.5", "kimi-k2.5", "moonshot", 0.0, 0.0, "flat", 3100, 6),
    ("openai/acme-internal-llm", "acme-internal-llm", "openai", 0.0, 0.0, "unpriced", 700, 4),
]
TOOL_WEIGHTS = {"claude-code": 45, "codex": 22, "kimi": 6, "openai-sdk": 15, "other": 12}
PROJECTS = [
    "atlas", "zephyr", "orion", "lyra", "vega", "nova", "pulse", "harbor", "summit", "quartz",
    "ember", "delta", "fjord", "granite", "helix", "iris", "juniper", "kepler", "lumen", "meridian",
]  # fmt: skip
WORKFLOWS = ["code-review", "refactor", "tests", "docs", "incident"]


LEDGER_COLUMNS = (
    "request_id", "time", "key_id", "token_hash", "key_alias", "user_id", "team_id", "model", "model_group",
    "provider", "prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens", "status",
    "error_type", "latency_ms", "ttft_ms", "client_tool", "user_agent", "request_tags", "spend_logs_metadata",
    "gateway_spend", "cost", "cost_source", "source", "ingested_at",
)  # fmt: skip
ERRORS = (  # (share of requests, error type): the rest succeed
    (0.02, ErrorType.RATE_LIMIT),
    (0.005, ErrorType.BUDGET_EXCEEDED),
    (0.01, ErrorType.PROVIDER),
)
STREAMED_SHARE = 0.12  # streamed calls the gateway logged at $0: the ledger's cost is computed
MODEL_SHARES = list(itertools.accumulate(model[7] for model in MODELS))


@dataclass(frozen=True)
class KeyPlan:
    """Who uses one key, when, with which tools, models and project tag."""

    key_id: int
    user_id: int
    team_id: int
    token_hash: str
    alias: str
    start: float  # epoch seconds
    span: float
    tool1: str
    tool2: str
    model1: int
    project: str


def _rows(plans: list[KeyPlan], rng: random.Random, now: datetime) -> Iterator[tuple]:
    """Ledger rows without end: heavy and light keys (a power law over the shuffled plans), weekday-heavy
    times, a key's usual model and tool most of the time, errors, long-tailed tokens and latencies, and a
    share of requests tagged with a project and a workflow."""
    rand, gauss = rng.random, rng.gauss
    keys = len(plans)
    plain_tags = {tool: json.dumps([f"User-Agent: {agent}"]) for tool, agent in USER_AGENTS.items()}
    for g in itertools.count(1):
        plan = plans[min(int(rand() ** 1.7 * keys), keys - 1)]
        model_n = plan.model1 if rand() < 0.7 else bisect.bisect_right(MODEL_SHARES, rand() * MODEL_SHARES[-1])
        model, group, provider, p_in, p_out, kind, latency, _ = MODELS[min(model_n, len(MODELS) - 1)]
        moment = datetime.fromtimestamp(plan.start + plan.span * rand(), tz=UTC)
        if moment.isoweekday() >= 6 and rand() < 0.8:
            moment -= timedelta(days=2)  # most weekend work moves to the week
        tool = plan.tool1 if rand() < 0.8 else plan.tool2
        roll, error = rand(), ""
        for share, error_type in ERRORS:
            if roll < share:
                error = error_type
                break
            roll -= share
        if error:
            prompt = completion = 0
        else:
            a, b = rand(), rand()
            prompt, completion = 200 + int(a * a * 30_000), 20 + int(b * b * 2_500)
        if error or kind == "flat":
            cost, source = Decimal(0), CostSource.FLAT_RATE if kind == "flat" and not error else CostSource.GATEWAY
        elif kind == "unpriced":
            cost, source = None, CostSource.UNPRICED
        else:
            cost = Decimal(round(prompt * p_in + completion * p_out, 6)).quantize(Decimal("0.000001"))
            source = CostSource.COMPUTED if rand() < STREAMED_SHARE else CostSource.GATEWAY
        agent = USER_AGENTS[tool]
        tag_roll = rand()
        if tag_roll < 0.3:
            tags = json.dumps([f"project:{plan.project}", f"workflow:{WORKFLOWS[g % 5]}", f"User-Agent: {agent}"])
        elif tag_roll < 0.6:
            tags = json.dumps([f"project:{plan.project}", f"User-Agent: {agent}"])
        else:
            tags = plain_tags[tool]
        yield (
            f"bench-{g:010d}",
            moment,
            plan.key_id,
            plan.token_hash,
            plan.alias,
            plan.user_id,
            plan.team_id,
            model,
            group,
            provider,
            prompt,
            completion,
            0,
            0,
            "failure" if error else "success",
            error,
            max(40, int(latency * math.exp(0.6 * gauss(0, 1)))),
            None,
            tool,
            agent,
            tags,
            None,
            cost if source == CostSource.GATEWAY and cost is not None else Decimal(0),
            cost,
            source,
            "pull",
            now,
        )


def create_org(*, seed: int, people: int, team_count: int, write: Callable[[str], object]) -> list[KeyPlan]:
    """The bench org: an admin, teams (one of four people), people (some also in a second team, 3% gone),
    their personal keys and the teams' service keys, model policies and team budgets; returns who uses
    which key, when, with which tools and models."""
    rng = random.Random(seed)
    now = timezone.now()
    year_start = now - timedelta(days=DAYS)
    write(f"creating {team_count} teams and {people} people ...")
    with transaction.atomic():
        admin = User.objects.create_user("bench-admin@bench.govsite.local", full_name="Bench Admin")
        OrgRoleGrant.objects.create(user=admin, role=OrgRole.ADMIN)
        teams = Team.objects.bulk_create(
            Team(name=f"Bench team {n:02d}", slug=f"bench-team-{n:02d}") for n in range(team_count)
        )
        # one team of four (hidden on the adoption page), the rest uneven
        weights = [rng.uniform(0.3, 1.7) for _ in teams[1:]]
        sizes = [4] + [max(5, round((people - 4) * w / sum(weights))) for w in weights]
        users = User.objects.bulk_create(
            User(
                email=f"bench-{n:04d}@bench.govsite.local",
                full_name=f"Bench Person {n:04d}",
                password="!",  # noqa: S106 - an unusable password
                date_joined=year_start,
            )
            for n in range(sum(sizes))
        )
        memberships, person_team = [], []
        position = 0
        for team, size in zip(teams, sizes, strict=True):
            for offset in range(size):
                user = users[position + offset]
                joined = year_start if rng.random() < 0.65 else year_start + timedelta(days=rng.uniform(0, 330))
                role = TeamRole.APPROVER if offset == 0 else TeamRole.MEMBER
                memberships.append(Membership(user=user, team=team, role=role, created_at=joined))
                person_team.append((user, team, joined))
            position += size
        for user in rng.sample(users[4:], len(users) // 20):  # 5% also work in a second team
            team = rng.choice(teams[1:])
            if not any(m.user_id == user.pk and m.team_id == team.pk for m in memberships):
                joined = year_start + timedelta(days=rng.uniform(0, 300))
                memberships.append(Membership(user=user, team=team, role=TeamRole.MEMBER, created_at=joined))
                person_team.append((user, team, joined))
        Membership.objects.bulk_create(memberships)
        deactivated = {}
        for user in rng.sample(users[4:], len(users) * 3 // 100):
            when = now - timedelta(days=rng.uniform(5, 200))
            user.is_active, user.deactivated_at = False, when
            deactivated[user.pk] = when
        User.objects.bulk_update([u for u in users if u.pk in deactivated], ["is_active", "deactivated_at"])

        internal, _ = DataClassification.objects.get_or_create(
            key="internal", defaults={"level": 2, "label": "Internal"}
        )
        for _model, group, provider, _, _, kind, _, _ in MODELS:
            ModelPolicy.objects.get_or_create(
                name=group,
                defaults={"provider": provider, "flat_rate": kind == "flat", "max_classification": internal},
            )
        keys, plans = [], []
        for n, (user, team, joined) in enumerate(person_team):
            provisioned = joined + timedelta(days=rng.uniform(0, 10))
            gone = deactivated.get(user.pk)
            key = VirtualKey(
                owner=user,
                team=team,
                kind=KeyKind.PERSONAL,
                alias=f"bench-{team.slug}-{user.pk}",
                allowed_models=[],
                max_budget=Decimal("300"),
                rpm_limit=rng.choice([None, 60, 120]),
                expires_at=now + timedelta(days=365),
                status=VirtualKey.Status.REVOKED if gone else VirtualKey.Status.ACTIVE,
                revoked_at=gone,
                token_hash=hashlib.sha256(f"sk-bench-{n}".encode()).hexdigest(),
                last4=f"{n:04d}"[-4:],
                provisioned_at=provisioned,
                created_at=provisioned,
            )
            keys.append(key)
            if rng.random() < 0.05:
                continue  # a zombie: issued, never used
            delay = rng.choice([0, 0, 1, 2, 3, 7, 14, 30, 60])
            start = min(provisioned + timedelta(days=delay), now - timedelta(days=1))
            plans.append((key, start, gone or now, team))
        for n, team in enumerate(teams[1:]):  # service keys, owned by the team's approver
            owner = next(m.user for m in memberships if m.team_id == team.pk and m.role == TeamRole.APPROVER)
            key = VirtualKey(
                owner=owner,
                team=team,
                kind=KeyKind.SERVICE,
                service_name="ci-bot",
                alias=f"bench-{team.slug}-ci",
                allowed_models=[],
                max_budget=Decimal("500"),
                expires_at=now + timedelta(days=365),
                status=VirtualKey.Status.ACTIVE,
                token_hash=hashlib.sha256(f"sk-bench-ci-{n}".encode()).hexdigest(),
                last4=f"{n:04d}"[-4:],
                provisioned_at=year_start,
                created_at=year_start,
            )
            keys.append(key)
            plans.append((key, year_start, now, team))
        VirtualKey.objects.bulk_create(keys)
        Budget.objects.bulk_create(
            Budget(team=team, amount=Decimal(size * 160), created_by=admin)
            for team, size in zip(teams, sizes, strict=True)
        )

        tools = list(TOOL_WEIGHTS)
        rng.shuffle(plans)  # heavy and light users spread over every team
        return [
            KeyPlan(
                key_id=key.pk,
                user_id=key.owner_id,
                team_id=key.team_id,
                token_hash=key.token_hash,
                alias=key.alias,
                start=start.timestamp(),
                span=max(0.0, (end - start).total_seconds()),
                tool1="other" if key.kind == KeyKind.SERVICE else rng.choices(tools, TOOL_WEIGHTS.values())[0],
                tool2=rng.choices(tools, TOOL_WEIGHTS.values())[0],
                model1=rng.choices(range(len(MODELS)), [m[7] for m in MODELS])[0],
                project=PROJECTS[(teams.index(team) * 3 + rng.randrange(3)) % len(PROJECTS)],
            )
            for key, start, end, team in plans
        ]


def copy_ledger(plans: list[KeyPlan], *, rows: int, seed: int, write: Callable[[str], object]) -> None:
    """Stream the ledger rows into PostgreSQL with COPY ... FROM STDIN, made here from a seeded generator."""
    columns = ", ".join(LEDGER_COLUMNS)
    write(f"writing {rows:,} ledger rows with COPY, reported every {CHUNK:,} ...")
    started = time.monotonic()
    generator = _rows(plans, random.Random(seed), timezone.now())
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {SpendRecord._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        for done, row in enumerate(itertools.islice(generator, rows), start=1):
            copy.write_row(row)
            if done % CHUNK == 0 or done == rows:
                elapsed = time.monotonic() - started
                write(f"  {done:>12,} rows  {elapsed:7.0f} s  ({done / elapsed:,.0f} rows/s)")
