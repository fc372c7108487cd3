"""The price of a request from its tokens, with litellm's bundled price map.

`litellm.cost_per_token` is the authority. It costs ~90 µs a call, too slow for ingesting at the
gateway's rate, so for each model we first learn its per-token prices *from litellm itself*
(probing cost_per_token) and check on further points that the price really is linear there. A
request is then priced with those coefficients when it lies inside the range that was checked
(below the model's first "above_Nk_tokens" tier, cached + cache-creation ≤ prompt); anything
else — tiered models, huge prompts, models whose map entry we cannot read — goes to litellm.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

log = logging.getLogger(__name__)
NANO = Decimal("0.000000001")  # the ledger's nine places
_TIER = re.compile(r"_above_(\d+)k_tokens")
# Points at which the learned coefficients must reproduce litellm's price (all below 32k tokens).
_CHECK_POINTS = ((5000, 777, 1234, 321), (20000, 5000, 0, 0), (3, 1, 1, 1), (30000, 31000, 29000, 0))
_PROBE = 1000


def to_money(value: float) -> Decimal:
    """USD with nine decimals. Rounding to 15 places first removes float noise (1e-20) that could
    otherwise tip a half-way value one nano-dollar either way."""
    return Decimal(repr(round(value, 15))).quantize(NANO, rounding=ROUND_HALF_UP)


def _litellm():
    # Never fetch the remote price map at import (STYLE.md: no network at run time).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def litellm_cost(model: str, prompt: int, completion: int, cache_read: int, cache_creation: int) -> float:
    """litellm's own price; raises if the model is not in its price map."""
    prompt_usd, completion_usd = _litellm().cost_per_token(
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
    )
    return prompt_usd + completion_usd


@dataclass(frozen=True, slots=True)
class Pricer:
    """How to price one model: the name litellm knows it by, and (when checked) its linear prices."""

    model: str
    coefficients: tuple[float, float, float, float] | None = None
    linear_below: int = 0

    def cost(self, prompt: int, completion: int, cache_read: int, cache_creation: int) -> Decimal:
        if (
            self.coefficients is not None
            and prompt < self.linear_below
            and completion < self.linear_below
            and cache_read + cache_creation <= prompt
        ):
            a_p, a_c, a_r, a_w = self.coefficients
            return to_money(a_p * prompt + a_c * completion + a_r * cache_read + a_w * cache_creation)
        return to_money(litellm_cost(self.model, prompt, completion, cache_read, cache_creation))


def _map_entry(model: str) -> dict | None:
    cost_map = _litellm().model_cost
    entry = cost_map.get(model)
    if entry is None and "/" in model:
        entry = cost_map.get(model.split("/", 1)[1])
    return entry if isinstance(entry, dict) else None


def _linear_limit(entry: dict | None) -> int:
    """Token count below which the price is one line; 0 when we cannot tell (always ask litellm)."""
    if entry is None or any("tiered" in key for key in entry):
        return 0
    tiers = [int(m.group(1)) * 1000 for key in entry if (m := _TIER.search(key))]
    return min(tiers) if tiers else 10**9


def _learn(model: str) -> Pricer:
    limit = _linear_limit(_map_entry(model))
    if limit <= max(max(point[:2]) for point in _CHECK_POINTS):
        return Pricer(model=model)
    base = litellm_cost(model, _PROBE, 0, 0, 0)
    a_p = base / _PROBE
    a_c = litellm_cost(model, 0, _PROBE, 0, 0) / _PROBE
    a_r = (litellm_cost(model, _PROBE, 0, _PROBE // 2, 0) - base) / (_PROBE // 2)
    a_w = (litellm_cost(model, _PROBE, 0, 0, _PROBE // 2) - base) / (_PROBE // 2)
    coefficients = (a_p, a_c, a_r, a_w)
    for p, c, r, w in _CHECK_POINTS:
        expected = litellm_cost(model, p, c, r, w)
        got = a_p * p + a_c * c + a_r * r + a_w * w
        if abs(got - expected) > max(abs(expected) * 1e-9, 1e-15):
            return Pricer(model=model)
    return Pricer(model=model, coefficients=coefficients, linear_below=limit)


_pricers: dict[tuple[str, str, str], Pricer | None] = {}
_lock = threading.Lock()


def _candidates(model: str, model_group: str, provider: str) -> list[str]:
    # The underlying model is what is priced: a private model served under a public name (model_group)
    # is unpriced, not priced as the public one. The public name counts only when nothing else was logged.
    name = model or model_group
    names = [name]
    if provider and name and not name.startswith(f"{provider}/"):
        names.append(f"{provider}/{name}")
    return list(dict.fromkeys(name for name in names if name))


def pricer_for(model: str, model_group: str = "", provider: str = "") -> Pricer | None:
    """The pricer of a model, or None when litellm's price map does not know it (unpriced)."""
    cache_key = (model, model_group, provider)
    if cache_key in _pricers:
        return _pricers[cache_key]
    found: Pricer | None = None
    for name in _candidates(model, model_group, provider):
        try:
            litellm_cost(name, 1, 1, 0, 0)
        except Exception:  # noqa: BLE001, S112 - litellm raises many types for "not mapped"; the row is then flagged unpriced
            continue
        found = _learn(name)
        break
    with _lock:
        _pricers[cache_key] = found
    return found


def compute_cost(
    *,
    model: str,
    model_group: str = "",
    provider: str = "",
    prompt_tokens: int,
    completion_tokens: int,
    cache_read_tokens: int = 0,
    cache_creation_tokens: int = 0,
) -> Decimal | None:
    """litellm's price for these tokens in USD (9 places), or None if the model is not priced."""
    pricer = pricer_for(model, model_group, provider)
    if pricer is None:
        return None
    return pricer.cost(prompt_tokens, completion_tokens, cache_read_tokens, cache_creation_tokens)


def _usage(usage: dict | None, prompt: int, completion: int, cache_read: int, cache_creation: int):
    Usage = _litellm().Usage
    if usage:
        try:
            return Usage(**usage)
        except (TypeError, ValueError):
            log.warning("a logged usage object litellm cannot read; pricing from the token counts")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
    )


def request_cost(
    *,
    model: str,
    model_group: str = "",
    provider: str = "",
    call_type: str = "",
    usage: dict | None = None,
    prompt_tokens: int,
    completion_tokens: int,
    cache_read_tokens: int = 0,
    cache_creation_tokens: int = 0,
    service_tier: str = "",
    model_info: dict | None = None,
    when: datetime | None = None,
) -> Decimal | None:
    """litellm's price of one request from everything its row carries, or None when unpriced.

    Used only when the gateway logged no cost. With the price-map entry LiteLLM logged for the
    request (a deployment's own prices included) the request is priced with exactly that entry;
    otherwise with the bundled map's entry for the underlying model. The full usage object carries
    cache writes by TTL and reasoning tokens; the service tier picks the tier's prices.
    """
    litellm = _litellm()
    usage_block = _usage(usage, prompt_tokens, completion_tokens, cache_read_tokens, cache_creation_tokens)
    tier = service_tier or None
    if model_info is not None:
        # litellm is imported on first use, never at module import (slow; LITELLM_LOCAL_MODEL_COST_MAP first).
        from litellm.litellm_core_utils.llm_cost_calc.utils import generic_cost_per_token

        bare = model.split("/", 1)[1] if "/" in model else model
        provider_name = provider or str(model_info.get("litellm_provider") or "openai")
        try:
            prompt_usd, completion_usd = generic_cost_per_token(
                model=bare,
                usage=usage_block,
                custom_llm_provider=provider_name,
                service_tier=tier,
                model_info=model_info,
                current_time=when,
            )
        except Exception:  # noqa: BLE001 - litellm raises many types for an entry it cannot read; the map is tried next
            log.warning("litellm could not price %s with its logged model info; trying the price map", model)
        else:
            return to_money(prompt_usd + completion_usd)
    for name in _candidates(model, model_group, provider):
        if pricer_for(name) is None:
            continue
        try:
            prompt_usd, completion_usd = litellm.cost_per_token(
                model=name,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                usage_object=usage_block,
                service_tier=tier,
                call_type=_call_type(call_type),
            )
        except Exception:  # noqa: BLE001, S112 - as in pricer_for: "not mapped" comes in many types
            continue
        return to_money(prompt_usd + completion_usd)
    return None


def _call_type(call_type: str) -> str:
    return "embedding" if "embedding" in call_type else "completion"


_STANDARD_TIERS = {"", "auto", "default", "standard"}


def disagreement_reason(
    *, usage: dict | None, service_tier: str, model_info: dict | None, map_entry_prices: tuple | None
) -> str:
    """Why LiteLLM's figure may differ from a price computed from the four token counts: what it
    priced with that the counts do not show. 'unexplained' when the row shows nothing of the kind."""
    if model_info is not None and map_entry_prices is not None:
        logged = (model_info.get("input_cost_per_token"), model_info.get("output_cost_per_token"))
        if logged != map_entry_prices:
            return "deployment_price"
    if model_info is not None and map_entry_prices is None:
        return "deployment_price"
    if service_tier.lower() not in _STANDARD_TIERS:
        return "service_tier"
    usage = usage or {}
    details = usage.get("cache_creation_token_details") or {}
    if isinstance(details, dict) and details.get("ephemeral_1h_input_tokens"):
        return "cache_write_1h"
    completion_details = usage.get("completion_tokens_details") or {}
    if isinstance(completion_details, dict) and completion_details.get("reasoning_tokens"):
        return "reasoning_tokens"
    server_tools = usage.get("server_tool_use") or {}
    if isinstance(server_tools, dict) and server_tools.get("web_search_requests"):
        return "web_search"
    return "unexplained"


def map_prices(model: str, provider: str = "") -> tuple | None:
    """(input, output) per-token prices of the bundled map's entry for the underlying model."""
    for name in _candidates(model, "", provider):
        entry = _map_entry(name)
        if entry is not None:
            return (entry.get("input_cost_per_token"), entry.get("output_cost_per_token"))
    return None
