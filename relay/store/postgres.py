"""The PostgreSQL store: one database shared by any number of relay processes on any machines.

What is shared, and how (docs/scale-out.md says why it is exact):
- spend per (email, date) in `daily`: a call's cost is added when its reservation is settled, in
  the same transaction that releases the reservation, so every relay's next admission sees it;
- reservations (`holds`, with a lease this relay renews while the call runs) and rate-limit
  windows (`rates`), decided by `aipipe_admit` under a per-user lock (see migrations.py);
- the ledger (`requests`): rows are buffered here and written in batches every `flush_seconds`
  (ids are unique, so a retried batch lands once); admin overwrites go straight to `daily`.

Admissions and settles that arrive while a round trip is under way share the next one
(`Batcher`). When PostgreSQL cannot be reached, calls that need it raise `DatabaseUnavailable`
at once (a probe retries in the background) and ledger rows wait here, bounded, until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import operator
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from relay.clock import utc_today
from relay.store.base import COLUMN_NAMES, LedgerError, LedgerRow
from relay.store.batching import Batcher
from relay.store.migrations import LEDGER_COLUMNS, PG_TYPES
from relay.store.pg_schema import migrate

_ROW = operator.attrgetter(*COLUMN_NAMES)
SESSION = {"application_name": "aipipe", "jit": "off"}
RETRY_SECONDS = 0.5  # while the database is down: how often a probe tries it again
FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

INSERT_ROWS = "INSERT INTO requests SELECT * FROM unnest({}) ON CONFLICT (id) DO NOTHING".format(
    ", ".join(f"${i}::{PG_TYPES.get(t, t)}[]" for i, (_, t) in enumerate(LEDGER_COLUMNS, 1))
)
_ADMIT = "SELECT n, hold, held, spent, reserved, retry_after FROM aipipe_admit($1, $2, $3, $4, $5, $6)"
_SETTLE = "SELECT n, spent FROM aipipe_settle($1, $2, $3, $4, $5, $6)"
_RENEW = "UPDATE holds SET expires = clock_timestamp() + $2 * interval '1 second' WHERE id = ANY($1)"
_SWEEP = "DELETE FROM holds WHERE expires < clock_timestamp() - interval '1 minute'"


class DatabaseUnavailable(LedgerError):
    """PostgreSQL could not be reached or failed the call; the message says why."""


@dataclass(slots=True)
class Admission:
    """What `aipipe_admit` decided for one call. `hold` is None when refused (or rate-only)."""

    hold: int | None
    amount: Decimal | None
    spent: Decimal
    reserved: Decimal  # other live reservations of the user, on every relay
    retry_after: int | None  # set when the rate limit refused the call


@dataclass(slots=True)
class _Ask:  # one admission in a batch
    email: str
    since: date
    limit: Decimal | None  # None: check the rate limit only (free calls)
    want: Decimal
    rpm: int | None


@dataclass(slots=True)
class _Settle:  # one settle in a batch: release `hold`, add `adds`, report spend since `since`
    hold: int | None
    email: str
    adds: dict[date, Decimal]
    since: date | None


class PgStore:
    def __init__(
        self,
        url: str,
        *,
        flush_seconds: float = 0.5,
        pool_size: int = 10,
        timeout: float = 5.0,
        lease: float = 60.0,
        max_pending: int = 100_000,
    ):
        self.url = url
        self.flush_seconds = flush_seconds
        self.pool_size = pool_size
        self.timeout = timeout  # seconds for a connection or a statement
        self.lease = lease  # seconds a reservation outlives a relay that stops renewing it
        self.max_pending = max_pending  # buffered rows beyond which $0 rows are dropped (counted)
        self.pool: asyncpg.Pool | None = None
        self.rows_written = 0
        self.dropped_rows = 0
        self.last_flush_error: str | None = None
        self.last_flush_at: float | None = None  # time.time() of the last flush that succeeded
        self.database_error: str | None = None  # why the last call failed, until one succeeds
        self._retry_at = 0.0
        self._rows: list[LedgerRow] = []
        self._unsettled: dict[str, dict[date, Decimal]] = {}  # recorded costs not yet in `daily`
        self._retry: list[_Settle] = []  # settles that failed: the flush applies them
        self._live: dict[int, tuple[str, Decimal]] = {}  # this relay's holds: id -> (email, amount)
        self._live_users: dict[str, int] = defaultdict(int)
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        # Admissions and settles each keep a connection of their own (a "lane": one batch at a
        # time uses it), because taking one from the pool and giving it back costs about as much
        # client CPU as the round trip itself. Everything else uses the pool.
        self._lanes: dict[str, asyncpg.Connection] = {}
        self._admit = Batcher(self._admit_batch, orphan=self._orphaned)
        self._settle = Batcher(functools.partial(self._settle_batch, lane="settle"))

    # -- life cycle -------------------------------------------------------------------------
    async def open(self, *, background: bool = True) -> PgStore:
        try:
            # Migrations on a connection of their own: it holds a session-level advisory lock.
            con = await self._connect()
            try:
                await migrate(con)
            finally:
                await con.close()
            self.pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.timeout,
                command_timeout=self.timeout,
                server_settings=SESSION,
                reset=_keep_session,
            )
        except FAILURES as e:
            if self.pool is not None:
                self.pool.terminate()
                self.pool = None
            raise DatabaseUnavailable(f"cannot open the PostgreSQL store: {_why(e)}") from e
        if background:
            self._task = asyncio.get_running_loop().create_task(self._maintain())
        return self

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.pool is None:
            return
        try:
            self._retry_at = 0.0  # the last flush tries whatever the breaker says
            await self.flush()
        except LedgerError as e:
            raise LedgerError(f"{self.pending()} ledger rows not written: {e}") from e
        finally:
            for con in self._lanes.values():
                con.terminate()
            self._lanes.clear()
            await self.pool.close()
            self.pool = None

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.url, timeout=self.timeout, command_timeout=self.timeout, server_settings=SESSION
        )

    async def _maintain(self) -> None:
        """Flush every `flush_seconds`; renew this relay's leases every third of a lease."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                if self.database_error is not None:
                    await self._call(lambda con: con.fetchval("SELECT 1"))
                await self.flush()
                if time.monotonic() - renewed > self.lease / 3:
                    await self._renew()
                    renewed = time.monotonic()
            except LedgerError as e:  # keep the buffers; /healthz shows why
                self.last_flush_error = str(e)

    async def _renew(self) -> None:
        ids = list(self._live)
        await self._call(lambda con: con.execute(_RENEW, ids, self.lease))
        await self._call(lambda con: con.execute(_SWEEP))

    async def _call(self, work: Any, lane: str | None = None) -> Any:
        """Run `work(connection)` on a pooled connection (or the lane's own); failures become
        DatabaseUnavailable. While the database is known to be down, fail at once until the
        next probe instead of waiting on each call."""
        if self.pool is None:
            raise DatabaseUnavailable("the PostgreSQL store is not open")
        if self.database_error is not None and time.monotonic() < self._retry_at:
            raise DatabaseUnavailable(self.database_error)
        try:
            if lane is None:
                async with self.pool.acquire() as con:
                    result = await work(con)
            else:
                con = self._lanes.get(lane)
                if con is None or con.is_closed():
                    con = self._lanes[lane] = await self._connect()
                try:
                    result = await work(con)
                except BaseException:  # its state is unknown (cancelled mid-query): a new one next
                    self._lanes.pop(lane, None)
                    con.terminate()
                    raise
        except FAILURES as e:
            self.database_error = f"PostgreSQL: {_why(e)}"
            self._retry_at = time.monotonic() + RETRY_SECONDS
            self.pool.expire_connections()  # after a restart, every pooled connection is stale
            raise DatabaseUnavailable(self.database_error) from e
        self.database_error = None
        return result

    # -- the ledger -------------------------------------------------------------------------
    def record(self, row: LedgerRow) -> None:
        """Buffer a ledger row; its cost goes to `daily` with the user's next settle."""
        if row.cost:
            days = self._unsettled.setdefault(row.email, {})
            days[row.date] = days.get(row.date, Decimal(0)) + row.cost
        elif len(self._rows) >= self.max_pending:
            self.dropped_rows += 1  # the database is away; only $0 rows are ever dropped
            return
        self._rows.append(row)

    def pending(self) -> int:
        return len(self._rows)

    def worker(self) -> str:
        return "postgresql"

    async def flush(self) -> int:
        """Write buffered rows; apply settles that failed, and costs with no settle to come."""
        async with self._flushing:  # one at a time: a reader waits for the flush under way
            return await self._flush()

    async def _flush(self) -> int:
        for email in [e for e in self._unsettled if not self._live_users.get(e)]:
            self._retry.append(_Settle(None, email, self._unsettled.pop(email), None))
        if self._retry:
            retry, self._retry = self._retry, []
            try:
                await self._settle_batch(retry)
            except BaseException:  # also a cancelled flush: nothing drained may be lost
                self._retry[:0] = retry
                raise
        rows, self._rows = self._rows, []
        if not rows:
            self.last_flush_error = None
            self.last_flush_at = time.time()
            return 0
        columns = [list(c) for c in zip(*map(_ROW, rows), strict=True)]
        try:
            await self._call(lambda con: con.execute(INSERT_ROWS, *columns))
        except BaseException:  # ids are unique: a batch that did land is not written twice
            self._rows[:0] = rows
            raise
        self.rows_written += len(rows)
        self.last_flush_error = None
        self.last_flush_at = time.time()
        return len(rows)

    # -- budgets ----------------------------------------------------------------------------
    async def admit(
        self, email: str, since: date, limit: Decimal | None, want: Decimal, rpm: int | None
    ) -> Admission:
        """Rate limit, then (unless `limit` is None) reserve up to `want` of what is left."""
        admission = await self._admit.submit(_Ask(email, since, limit, want, rpm))
        if admission.hold is not None:
            self._live[admission.hold] = (email, admission.amount or Decimal(0))
            self._live_users[email] += 1
        return admission

    async def settle(self, hold: int | None, email: str, since: date | None) -> Decimal | None:
        """Release `hold` and add what this relay recorded for `email` to `daily`, together.
        Returns the spend since `since`. On failure the flush does it once the database is back."""
        adds = self._unsettled.pop(email, {})
        if hold is not None and self._live.pop(hold, None) is not None:
            self._live_users[email] -= 1
            if not self._live_users[email]:
                del self._live_users[email]
        item = _Settle(hold, email, adds, since)
        try:
            return await self._settle.submit(item)
        except LedgerError:
            self._retry.append(item)
            raise

    def owes(self, email: str) -> bool:
        """Whether this relay recorded cost for `email` that is not in `daily` yet."""
        return email in self._unsettled

    def reserved(self) -> Decimal:
        """What this relay's live calls hold against budgets."""
        return sum((amount for _, amount in self._live.values()), Decimal(0))

    def _orphaned(self, admission: Admission) -> None:
        """An admission whose caller went away before it was answered: release its hold."""
        if admission.hold is not None:
            self._retry.append(_Settle(admission.hold, "", {}, None))

    async def _admit_batch(self, asks: list[_Ask]) -> list[Admission]:
        rows = await self._call(
            lambda con: con.fetch(
                _ADMIT,
                [a.email for a in asks],
                [a.since for a in asks],
                [a.limit for a in asks],
                [a.want for a in asks],
                [a.rpm for a in asks],
                self.lease,
            ),
            "admit",
        )
        out: list[Admission | None] = [None] * len(asks)
        for n, hold, held, spent, reserved, retry_after in rows:
            out[n - 1] = Admission(hold, held, spent or Decimal(0), reserved or Decimal(0), retry_after)
        return out  # type: ignore[return-value]

    async def _settle_batch(
        self, items: list[_Settle], lane: str | None = None
    ) -> list[Decimal | None]:
        adds = [(i.email, d, c) for i in items for d, c in i.adds.items()]
        asks = [(n, i.email, i.since) for n, i in enumerate(items, 1) if i.since is not None]
        rows = await self._call(
            lambda con: con.fetch(
                _SETTLE,
                [i.hold for i in items if i.hold is not None],
                [e for e, _, _ in adds],
                [d for _, d, _ in adds],
                [c for _, _, c in adds],
                [e for _, e, _ in asks],
                [s for _, _, s in asks],
            ),
            lane,
        )
        spent: list[Decimal | None] = [None] * len(items)
        for (n, _, _), (_, value) in zip(asks, sorted(rows), strict=True):
            spent[n - 1] = value
        return spent

    # -- reads ------------------------------------------------------------------------------
    async def read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """A read-only query written with `?` placeholders (the DuckDB store's dialect), after
        writing this relay's buffered rows (a user sees their own calls at once; other relays'
        rows arrive within their flush interval)."""
        if self._rows or self._flushing.locked():
            await self.flush()
        statement = _numbered(sql)
        args = list(params)
        rows = await self._call(lambda con: con.fetch(statement, *args))
        return [tuple(r) for r in rows]

    async def spend(self, email: str, days: int, today: date | None = None) -> Decimal:
        since = (today or utc_today()) - timedelta(days=days - 1)
        sql = "SELECT coalesce(sum(cost), 0) FROM daily WHERE email = $1 AND date >= $2"
        return await self._call(lambda con: con.fetchval(sql, email.lower(), since))

    async def day_costs(
        self, email: str, days: int, today: date | None = None
    ) -> list[tuple[date, Decimal]]:
        today = today or utc_today()
        window = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
        sql = "SELECT date, cost FROM daily WHERE email = $1 AND date >= $2"
        rows = await self._call(lambda con: con.fetch(sql, email.lower(), window[0]))
        found = {d: c for d, c in rows}
        return [(d, found.get(d, Decimal(0))) for d in window]

    async def set_day(self, email: str, day: date, cost: Decimal) -> None:
        """Overwrite one day's cost (admin correction), seen by every relay at once."""
        sql = (
            "INSERT INTO daily VALUES ($1, $2, $3) "
            "ON CONFLICT (email, date) DO UPDATE SET cost = excluded.cost"
        )
        await self._call(lambda con: con.execute(sql, email.lower(), day, cost))

    async def export_file(self, out: Path, fmt: str) -> int:
        """Write the ledger to `out` as parquet or csv (through a scratch DuckDB file)."""
        from relay.store.duckdb_ledger import LedgerFileWriter

        if fmt not in ("parquet", "csv"):
            raise ValueError("format must be parquet or csv")
        await self.flush()
        writer = LedgerFileWriter(out.parent / f".{out.name}.duckdb")
        try:

            async def copy(con: asyncpg.Connection) -> None:
                async with con.transaction():
                    cursor = await con.cursor(f"SELECT {', '.join(COLUMN_NAMES)} FROM requests")
                    while rows := await cursor.fetch(20_000):
                        columns = [list(c) for c in zip(*rows, strict=True)]
                        await anyio.to_thread.run_sync(writer.append, columns)

            await self._call(copy)
            return await anyio.to_thread.run_sync(writer.finish, out, fmt)
        finally:
            writer.close()


async def _keep_session(con: asyncpg.Connection) -> None:
    """What the pool does to a connection given back: nothing. The default resets the session
    with one more round trip per use; the relay's statements leave no session state behind
    (each is its own transaction; SET LOCAL and transaction-scoped locks end with it)."""


def _numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...` (the relay's queries quote no `?`)."""
    parts = sql.split("?")
    return "".join(p + (f"${i}" if i < len(parts) else "") for i, p in enumerate(parts, 1))


def _why(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) < 300 else text[:300] + "…"
