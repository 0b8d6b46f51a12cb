"""Budgets shared by many relay processes: every admission and settle is decided in PostgreSQL
(`relay.store.postgres`), so a user's limit holds across all of them as it does in one process.

Fail closed: when the database cannot be reached, a budgeted call is refused with 503 (nothing
could say whether it fits); free calls still pass, rate-limited in this process meanwhile.
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from decimal import Decimal

from relay.clock import utc_today
from relay.costing.budget import ZERO, RateWindows, Reservation, over_budget, rate_limited
from relay.errors import ServiceUnavailable
from relay.policy import Budget, PolicyView
from relay.store.postgres import DatabaseUnavailable, PgStore

log = logging.getLogger("aipipe.budget")
FRESH = 1.0  # seconds a spend figure from this relay's own settle serves the remaining header


class StoreUnavailable(ServiceUnavailable):
    code = "store_unavailable"


class SharedBudgets:
    def __init__(self, policy: PolicyView, store: PgStore):
        self.policy = policy
        self.store = store
        self._known: dict[str, tuple[float, Decimal]] = {}  # email -> (when, limit - spent)
        self._fallback = RateWindows()  # free calls' rate limit while the database is away
        self._open = 0  # reservations admitted here and not yet settled (for /metrics)

    async def standing(self, email: str) -> tuple[Budget, Decimal]:
        budget = self.policy.budget_for(email)
        return budget, await self.store.spend(email.lower(), budget.days)

    async def day_costs(self, email: str, days: int) -> list[tuple[date, Decimal]]:
        return await self.store.day_costs(email.lower(), days)

    async def admit(self, email: str, estimate: Decimal) -> Reservation:
        """Reserve up to `estimate` in the database, or raise 429 (over budget, rate limit) or
        503 (database unreachable)."""
        email = email.lower()
        budget = self.policy.budget_for(email)
        try:
            a = await self.store.admit(
                email, _since(budget.days), budget.limit, max(estimate, ZERO), budget.rpm
            )
        except DatabaseUnavailable as e:
            raise StoreUnavailable(
                "The usage database cannot be reached, so the relay cannot check budgets: "
                "budgeted calls are refused until it is back"
            ) from e
        if a.retry_after is not None:
            raise rate_limited(budget, a.retry_after)
        if a.hold is None or a.amount is None:
            raise over_budget(budget, a.spent, a.reserved)
        self._open += 1
        return Reservation(email, budget, a.amount, budget.limit - a.spent - a.reserved, hold=a.hold)

    async def admit_free(self, email: str) -> Reservation:
        """Free calls pass even with no budget left, but count against the rate limit."""
        email = email.lower()
        budget = self.policy.budget_for(email)
        if not budget.rpm:
            return Reservation(email, budget, ZERO, await self.remaining(email))
        try:
            a = await self.store.admit(email, _since(budget.days), None, ZERO, budget.rpm)
        except DatabaseUnavailable:
            self._fallback.check(email, budget)
            return Reservation(email, budget, ZERO, self._last(email, budget))
        if a.retry_after is not None:
            raise rate_limited(budget, a.retry_after)
        return Reservation(email, budget, ZERO, budget.limit - a.spent - a.reserved)

    async def settle(self, reservation: Reservation) -> None:
        """Release the hold and add the recorded cost to the day, together, in the database."""
        if reservation.settled:
            return
        reservation.settled = True
        if reservation.hold is not None:
            self._open -= 1
        email, budget = reservation.email, reservation.budget
        if reservation.hold is None and not self.store.owes(email):
            return  # a free call: nothing reserved, nothing to add
        try:
            spent = await self.store.settle(reservation.hold, email, _since(budget.days))
        except DatabaseUnavailable as e:  # the store keeps it and applies it once it is back
            log.warning("settle deferred until the usage database is back: %s", e)
            return
        if spent is not None:
            if len(self._known) > 10_000:  # bounded: one entry per recently settled user
                self._known.clear()
            self._known[email] = (time.monotonic(), budget.limit - spent)

    def reserved(self) -> Decimal:
        """What this relay's in-flight requests hold against budgets right now (for /healthz)."""
        return self.store.reserved()

    def open_reservations(self) -> int:
        return self._open

    async def remaining(self, email: str) -> Decimal:
        """limit - spent, for the headers: this relay's last settle for the user if it is fresh,
        else read; the last known figure (or 0) while the database is away."""
        email = email.lower()
        known = self._known.get(email)
        if known is not None and time.monotonic() - known[0] < FRESH:
            return known[1]
        budget = self.policy.budget_for(email)
        try:
            spent = await self.store.spend(email, budget.days)
        except DatabaseUnavailable:
            return self._last(email, budget)
        self._known[email] = (time.monotonic(), budget.limit - spent)
        return budget.limit - spent

    def _last(self, email: str, budget: Budget) -> Decimal:
        known = self._known.get(email)
        return known[1] if known is not None else ZERO


def _since(days: int) -> date:
    """The first UTC date of a budget window of `days` days ending today."""
    return utc_today() - timedelta(days=days - 1)
