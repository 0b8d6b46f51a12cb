"""Answers on their way back: a JSON answer read whole and priced, or a stream passed through as
it arrives (a tee: a copy feeds the usage reader). Either way the call is priced, recorded and
its reservation released — in `finally` for streams, so one the client abandons or the provider
breaks is recorded too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from decimal import Decimal

import anyio
import httpx
from starlette.responses import Response, StreamingResponse

from relay.costing.budget import Budgets, Reservation, budget_headers
from relay.costing.pricing import Price
from relay.errors import UpstreamError
from relay.forward.accounting import call_cost, estimate, record
from relay.forward.call import Call
from relay.forward.estimates import answer_chars, request_usage, usage_of
from relay.forward.passthrough import (
    ClosingStream,
    KeyMasker,
    cost_comment,
    error_event,
    mask_keys,
    response_headers,
)
from relay.providers.sse import StreamUsageReader
from relay.providers.usage_chunk import UsageChunkFilter
from relay.store import Store


class Answers:
    """Prices, records and settles answered calls; one per relay."""

    def __init__(self, store: Store, budgets: Budgets, keys: Iterable[str]):
        self.store = store
        self.budgets = budgets
        self.keys = keys  # the operator's provider keys, masked wherever an answer quotes them

    async def buffered(
        self, call: Call, resp: httpx.Response, price: Price | None, reservation: Reservation
    ) -> Response:
        """A JSON answer: read it whole (it is complete only at the end anyway), price it, and
        tell the client its cost in headers."""
        try:
            content = await resp.aread()
        except httpx.HTTPError as e:
            cost = estimate(call, price, 0)
            record(self.store, call, 502, "broken", None, cost, "estimated")
            await self.budgets.settle(reservation)
            raise UpstreamError(f"The provider broke off its answer ({type(e).__name__})") from e
        finally:
            await resp.aclose()
        usage, cost, source, outcome = None, Decimal(0), "free", "ok"
        if resp.status_code >= 400:
            outcome = "error"
        elif call.endpoint.kind != "free":
            usage = usage_of(call.provider.name, content) or request_usage(call, len(content))
            cost, source = call_cost(call, price, usage, lambda: answer_chars(call, content))
        record(self.store, call, resp.status_code, outcome, usage, cost, source)
        await self.budgets.settle(reservation)
        headers = response_headers(resp.headers)
        headers.update(budget_headers(await self.budgets.remaining(call.email), cost))
        headers["x-aipipe-cost-source"] = source
        content = mask_keys(content, self.keys)
        return Response(content, status_code=resp.status_code, headers=headers)

    def stream(
        self, call: Call, resp: httpx.Response, price: Price | None, reservation: Reservation
    ) -> StreamingResponse:
        headers = response_headers(resp.headers)
        headers.update(budget_headers(reservation.remaining_before))
        is_sse = "text/event-stream" in resp.headers.get("content-type", "")
        return ClosingStream(
            self._tee(call, resp, price, reservation, is_sse),
            status_code=resp.status_code,
            headers=headers,
        )

    async def _tee(
        self,
        call: Call,
        resp: httpx.Response,
        price: Price | None,
        reservation: Reservation,
        is_sse: bool,
    ) -> AsyncIterator[bytes]:
        reader = StreamUsageReader(call.provider.name)
        masker = KeyMasker(self.keys)  # the operator's key, quoted in any event, never leaves
        outcome, status, sent, tail = "aborted", resp.status_code, 0, b"\n\n"
        if resp.status_code >= 400:
            outcome = "error"
        # The usage chunk the relay asked for (not the client) is read, not forwarded.
        hidden = UsageChunkFilter() if is_sse and call.usage_chunk_hidden else None
        settled: tuple[Decimal, str] | None = None
        try:
            broke = b""
            try:
                async for chunk in resp.aiter_raw():
                    reader.feed(chunk)
                    sent += len(chunk)
                    if hidden is not None:
                        chunk = hidden.feed(chunk)
                    chunk = masker.feed(chunk)
                    if chunk:
                        tail = chunk[-2:]
                        yield chunk
                if outcome != "error":
                    outcome = "ok"
            except httpx.HTTPError as e:
                outcome, status = "broken", 502
                if is_sse:
                    message = f"The provider broke off the stream ({type(e).__name__})"
                    broke = error_event(call.provider.error_event, message)
            held = hidden.close() if hidden is not None else b""
            rest = masker.feed(held) + masker.close() + broke
            if rest:
                tail = rest[-2:]
                yield rest
            settled = await self._settle_stream(
                call, reader, outcome, status, sent, price, reservation
            )
            if is_sse and call.provider.cost_comment and outcome != "error":
                yield cost_comment(settled, await self.budgets.remaining(call.email), tail)
        finally:
            # Shielded: a cancelled (client gone) generator still records and settles - once
            # (a settle already started, after the row was recorded, completes on its own).
            if settled is None and outcome == "aborted" and reader.done:
                # The end marker went out: the answer was whole. A client may close as soon
                # as it reads it (the openai SDK does), before the provider closes.
                outcome = "ok"
            with anyio.CancelScope(shield=True):
                if settled is None and not reservation.settled:
                    await self._settle_stream(call, reader, outcome, status, sent, price, reservation)
                await resp.aclose()

    async def _settle_stream(
        self,
        call: Call,
        reader: StreamUsageReader,
        outcome: str,
        status: int,
        sent: int,
        price: Price | None,
        reservation: Reservation,
    ) -> tuple[Decimal, str]:
        """Price and record a stream that ended (or was abandoned); release its reservation."""
        reader.close()  # a last event with no trailing newline still counts
        if outcome == "ok" and not reader.done and reader.error is not None:
            # The provider ended the stream with an error event (e.g. Anthropic's overloaded):
            # the answer is cut short. (Only read without an end marker: it costs a scan.)
            outcome = "broken"
        usage = reader.usage or request_usage(call, sent)
        if outcome == "error":
            cost, source = Decimal(0), "free"
        else:
            # Text measured in the events; bytes only for answers the reader cannot parse.
            cost, source = call_cost(
                call, price, usage, lambda: reader.output_chars if reader.structured else sent
            )
        record(self.store, call, status, outcome, usage, cost, source)
        await self.budgets.settle(reservation)
        return cost, source
