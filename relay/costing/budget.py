"""Budgets that hold under concurrency: reserve before forwarding, settle after.

Admission reads the spend plus what in-flight requests have reserved, so N parallel requests
cannot each see the same untouched budget. A request is admitted while spent + reserved < limit;
if its estimated cost does not fit what is left, the caller may lower the request's output
allowance (max_tokens) to what is left.

Two implementations behind one async interface: `Budgets` (here) keeps reservations and rate
windows in this process and reads spend from the DuckDB store's in-memory mirror — no I/O on the
hot path; `SharedBudgets` (shared_budget.py) decides in PostgreSQL, for many relay processes.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from relay.errors import QuotaExceeded, RateLimited
from relay.policy import Budget, PolicyView
from relay.store import Store

ZERO = Decimal(0)


@dataclass(slots=True)
class Reservation:
    email: str
    budget: Budget
    amount: Decimal
    remaining_before: Decimal  # limit - spent - other reservations, at admission
    settled: bool = False
    hold: int | None = None  # the shared store's reservation id (PostgreSQL)


class Budgets:
    def __init__(self, policy: PolicyView, store: Store):
        self.policy = policy
        self.store = store
        self._reserved: dict[str, Decimal] = defaultdict(Decimal)
        self._rates = RateWindows()
        self._open = 0  # reservations admitted and not yet settled (for /metrics)

    def _standing(self, email: str) -> tuple[Budget, Decimal]:
        budget = self.policy.budget_for(email)
        return budget, self.store.spend(email, budget.days)

    async def standing(self, email: str) -> tuple[Budget, Decimal]:
        return self._standing(email)

    async def day_costs(self, email: str, days: int) -> list[tuple[date, Decimal]]:
        return self.store.day_costs(email, days)

    async def admit(self, email: str, estimate: Decimal) -> Reservation:
        """Reserve `estimate` for a request or raise 429. The reservation is clipped to what is
        left, so the sum of reservations never exceeds the limit."""
        budget, spent = self._standing(email)
        self._rates.check(email, budget)
        in_flight = self._reserved[email]
        remaining = budget.limit - spent - in_flight
        if remaining <= 0:
            raise over_budget(budget, spent, in_flight)
        amount = min(max(estimate, ZERO), remaining)
        self._reserved[email] = in_flight + amount
        self._open += 1
        return Reservation(email, budget, amount, remaining)

    async def admit_free(self, email: str) -> Reservation:
        """Free calls (model lists, token counts) pass even with no budget left — a user must
        still be able to see what exists — but count against the rate limit."""
        budget, spent = self._standing(email)
        self._rates.check(email, budget)
        self._open += 1
        return Reservation(email, budget, ZERO, budget.limit - spent - self._reserved[email])

    async def settle(self, reservation: Reservation) -> None:
        """Release the reservation (the real cost is recorded in the store by then)."""
        if reservation.settled:
            return
        reservation.settled = True
        self._open -= 1
        left = self._reserved[reservation.email] - reservation.amount
        if left > 0:
            self._reserved[reservation.email] = left
        else:
            del self._reserved[reservation.email]

    def reserved(self) -> Decimal:
        """What in-flight requests hold against budgets right now (for /healthz)."""
        return sum(self._reserved.values(), ZERO)

    def open_reservations(self) -> int:
        return self._open

    async def remaining(self, email: str) -> Decimal:
        budget, spent = self._standing(email)
        return budget.limit - spent


class RateWindows:
    """Requests per minute per user, in this process (the shared store keeps its own in SQL).
    `clock` is the seam for tests: seconds, monotonic."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._clock = clock

    def check(self, email: str, budget: Budget) -> None:
        if not budget.rpm:
            return
        now = self._clock()
        calls = self._calls[email]
        while calls and calls[0] <= now - 60:
            calls.popleft()
        if len(calls) >= budget.rpm:
            raise rate_limited(budget, max(1, int(calls[0] + 60 - now) + 1))
        calls.append(now)


def over_budget(budget: Budget, spent: Decimal, in_flight: Decimal) -> QuotaExceeded:
    return QuotaExceeded(
        f"Usage ${spent:.4f} / ${budget.limit:.4f} in {budget.days} days"
        + (f" (plus ${in_flight:.4f} in flight)" if in_flight > 0 else ""),
        headers=budget_headers(budget.limit - spent),
    )


def rate_limited(budget: Budget, retry: int) -> RateLimited:
    return RateLimited(
        f"Rate limit: {budget.rpm} requests per minute; retry in {retry} s", retry_after=retry
    )


def budget_headers(remaining: Decimal, cost: Decimal | None = None) -> dict[str, str]:
    headers = {"x-aipipe-remaining": f"{max(remaining, ZERO):.6f}"}
    if cost is not None:
        headers["x-aipipe-cost"] = f"{cost:.8f}"
    return headers
