"""Admission: a call's worst case, reserved against the user's budget before it is forwarded.

The rule: the worst-case cost of every admitted call, plus everything already reserved, never
exceeds the user's limit. A call that writes tokens is worst case when every reply runs to its
maximum — the one the request names, else the model's largest reply (`max_output` in the price
data) — so that maximum is always sent upstream, lowered to what the budget left can pay.

`plan` and `fit` are pure (no budget, no I/O); `admit` puts them around the reservation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from relay.costing.budget import Budgets, Reservation, budget_headers
from relay.costing.cost import affordable_output, reserve_estimate
from relay.costing.pricing import Price
from relay.errors import QuotaExceeded
from relay.forward.accounting import estimate
from relay.forward.call import Call, ask_for_stream_usage, choices, max_output, set_max_output
from relay.forward.thinking import smallest_cap
from relay.providers.registry import output_cap

MIN_OUTPUT_TOKENS = 16  # below this a capped reply is useless: refuse instead
# Output tokens held for a token-priced call with no output maximum to read or send, whose
# model's `max_output` is unknown (speech from gpt-4o-mini-tts: about five minutes of audio).
DEFAULT_OUTPUT_ALLOWANCE = 4096


@dataclass(frozen=True, slots=True)
class Plan:
    """What a call may cost at most, as asked, before the budget is consulted."""

    hold: Decimal  # the worst case: what to reserve
    requested: int | None  # the reply maximum the request named
    allowance: int | None  # output tokens per reply in `hold`; None: nothing to cap upstream
    replies: int  # n / candidateCount: each reply may run to the allowance
    floor: int = 0  # the smallest cap worth sending (MIN_OUTPUT_TOKENS, or more for thinking)


def plan(call: Call, price: Price) -> Plan:
    """The call's worst case at `price`, read from its body (every spelling of its limits)."""
    if not price.token_priced:  # tts-1, whisper-1, dall-e: the units the request asks for
        return Plan(estimate(call, price, 0), None, None, 1)
    if call.endpoint.kind == "images":  # images by count, quality and size
        return Plan(estimate(call, price, 0), None, None, choices(call))
    replies = choices(call)
    spec = output_cap(call.provider, call.endpoint)
    if spec is None:  # embeddings, speech, transcription: nothing to cap
        tokens = price.max_output or DEFAULT_OUTPUT_ALLOWANCE
        return Plan(reserve_estimate(price, call.input_tokens, tokens * replies), None, None, replies)
    requested = max_output(call)
    allowance = requested or spec.default or price.output_ceiling
    hold = reserve_estimate(price, call.input_tokens, allowance * replies)
    floor = smallest_cap(call.json) if spec.thinking and call.json is not None else 0
    return Plan(hold, requested, allowance, replies, max(floor, MIN_OUTPUT_TOKENS))


def fit(plan: Plan, price: Price, input_tokens: int, remaining: Decimal) -> int | None:
    """The output cap per reply to send when `remaining` dollars are left: the plan's
    allowance, lowered to what `remaining` pays after the prompt. None when the call cannot
    be admitted: its worst case exceeds `remaining` and it has no cap to lower, or the cap
    would be under the plan's floor (MIN_OUTPUT_TOKENS; with a thinking budget, Anthropic's
    1,024 thinking tokens and room for a reply)."""
    if plan.hold <= remaining:
        return plan.allowance if plan.allowance is not None else 0
    if plan.allowance is None:
        return None
    affordable = affordable_output(price, input_tokens, plan.replies, remaining)
    if affordable is None:  # output is free: the prompt alone is over budget
        return None
    cap = min(plan.allowance, affordable)
    return cap if cap >= max(plan.floor, MIN_OUTPUT_TOKENS) else None


async def admit(budgets: Budgets, call: Call, price: Price | None) -> Reservation:
    """Reserve the call's worst case and send the output cap that keeps it so."""
    if call.endpoint.kind == "free":
        return await budgets.admit_free(call.email)
    assert price is not None, "unpriced calls are refused before admission"
    asked = plan(call, price)
    reservation = await budgets.admit(call.email, asked.hold)
    cap = fit(asked, price, call.input_tokens, reservation.remaining_before)
    if cap is None:
        await budgets.settle(reservation)
        left = max(await budgets.remaining(call.email), Decimal(0))
        what = f"a reply from {call.model}" if asked.allowance is not None else "this call"
        if asked.floor > MIN_OUTPUT_TOKENS:
            what += f" with extended thinking (at least {asked.floor:,} output tokens)"
        raise QuotaExceeded(
            f"Budget left (${left:.4f}) cannot pay for {what} (up to ${asked.hold:.4f})",
            headers=budget_headers(left),
        )
    capped = asked.allowance is not None and (asked.requested is None or cap < asked.requested)
    if capped:
        set_max_output(call, cap)
    body = call.body
    if call.stream and call.provider.openai_style and call.json is not None:
        ask_for_stream_usage(call)  # encodes the body again when it adds stream_options
    if capped and call.body is body:
        call.body = json.dumps(call.json).encode()
    return reservation
