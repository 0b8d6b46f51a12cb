"""What a call cost — the provider's usage priced, else an estimate, never $0 for want of a
price — and the ledger row (plus log line) that records it."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from relay.costing.cost import compute_cost, estimate_cost, estimate_tokens
from relay.costing.pricing import Price
from relay.costing.usage import Usage
from relay.forward.call import Call
from relay.forward.estimates import request_usage, requested_images
from relay.logs import log_request
from relay.store import LedgerRow, Store


def call_cost(
    call: Call, price: Price | None, usage: Usage | None, output_size: Callable[[], int]
) -> tuple[Decimal, str]:
    """The one decision of what an answered call cost, as (cost, source): nothing for a free
    endpoint; the usage (the provider's, else what the request implies) priced when it can be;
    else an estimate from what was sent and `output_size()` characters of answer, marked
    "estimated". The answer is measured only then: reading its text costs."""
    if call.endpoint.kind == "free":
        return Decimal(0), "free"
    assert price is not None, "unpriced calls are refused before they are forwarded"
    if usage is not None:
        computed = compute_cost(price, usage)
        if computed is not None:
            return computed
    return estimate(call, price, output_size()), "estimated"


def estimate(call: Call, price: Price | None, output_size: int) -> Decimal:
    """A call's cost from what was sent and `output_size` characters of answer. Only free
    calls have no price (unpriced calls are refused before they are forwarded)."""
    if call.endpoint.kind == "free":
        return Decimal(0)
    assert price is not None, "unpriced calls are refused before they are forwarded"
    # Models billed per character, minute or image (tts-1, whisper-1, dall-e) have no
    # token price to estimate with: bill the units the request asked for instead.
    usage = request_usage(call, output_size) or requested_images(call)
    if usage is not None:
        computed = compute_cost(price, usage)
        if computed is not None and computed[0] > 0:
            return computed[0]
    return estimate_cost(
        price, input_tokens=call.input_tokens, output_tokens=estimate_tokens(output_size)
    )


def record(
    store: Store,
    call: Call,
    status: int,
    outcome: str,
    usage: Usage | None,
    cost: Decimal,
    source: str,
) -> None:
    """One ledger row and one log line for a finished (or failed) call."""
    u = usage or Usage()
    latency = (time.perf_counter() - call.started) * 1000
    log_request(
        id=call.id, user=call.email, provider=call.provider.name, model=call.model,
        path=call.path, status=status, outcome=outcome, cost=str(cost), source=source,
        latency_ms=round(latency, 2), streamed=call.stream,
    )
    store.record(
        LedgerRow(
            id=call.id,
            ts=call.ts,
            date=call.ts.date(),
            email=call.email,
            provider=call.provider.name,
            path=call.path,
            model=call.model,
            status=status,
            outcome=outcome,
            input_tokens=u.input_tokens if usage else call.input_tokens,
            output_tokens=u.output_tokens,
            cached_tokens=u.cached_input_tokens,
            reasoning_tokens=u.reasoning_tokens,
            cost=cost,
            cost_source=source,
            latency_ms=latency,
            streamed=call.stream,
            origin=call.origin,
        )
    )
