"""Admission: what a call may cost at most, reserved against the user's budget before it is
forwarded, with its output limit lowered to what the budget left can pay."""

from __future__ import annotations

from decimal import Decimal

from relay.costing.budget import Budgets, Reservation, budget_headers
from relay.costing.cost import reserve_estimate
from relay.costing.pricing import Price
from relay.errors import QuotaExceeded
from relay.forward.accounting import UNKNOWN_PRICE_RESERVE, estimate
from relay.forward.call import Call, ask_for_stream_usage, choices, max_output, set_max_output
from relay.forward.estimates import DEFAULT_OUTPUT_ALLOWANCE, affordable_output

MIN_OUTPUT_TOKENS = 16  # below this a capped reply is useless: refuse instead


async def admit(budgets: Budgets, call: Call, price: Price | None) -> Reservation:
    """Reserve what the call may cost, lowering its output limit to what the budget can pay."""
    if call.endpoint.kind == "free":
        return await budgets.admit_free(call.email)
    requested = max_output(call)
    replies = choices(call)  # n = 8 replies cost 8 allowances
    allowance = (requested or DEFAULT_OUTPUT_ALLOWANCE) * replies
    if price is None:
        hold = UNKNOWN_PRICE_RESERVE
    elif not price.token_priced:  # tts-1, whisper-1, dall-e: the units the request asks for
        hold = estimate(call, price, 0)
    else:
        hold = reserve_estimate(price, call.input_tokens, allowance)
    reservation = await budgets.admit(call.email, hold)
    if price is not None and hold > reservation.remaining_before and call.json is not None:
        # The budget left cannot pay for the whole allowance: cap the reply to what it can.
        cap = affordable_output(price, call.input_tokens, reservation.remaining_before)
        cap //= replies
        if cap < MIN_OUTPUT_TOKENS:
            await budgets.settle(reservation)
            spent = await budgets.remaining(call.email)
            raise QuotaExceeded(
                f"Budget left (${max(spent, Decimal(0)):.4f}) cannot pay for a reply from "
                f"{call.model}",
                headers=budget_headers(spent),
            )
        if requested is None or cap < requested:
            set_max_output(call, cap)
    if call.stream and call.provider.openai_style and call.json is not None:
        ask_for_stream_usage(call)
    return reservation

# -- upstream ---------------------------------------------------------------------------
