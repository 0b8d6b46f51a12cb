"""What every ledger shares: the row the relay records, the errors, and the `Ledger` protocol
that a database (in process or in the store worker) implements for `relay.store.buffered.Store`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from relay.store.migrations import LEDGER_COLUMNS

COLUMN_NAMES = tuple(name for name, _ in LEDGER_COLUMNS)
LOCK_WAIT = 5.0  # seconds to wait for another process (a killed relay's worker) to let go of the file
DayUpserts = dict[tuple[str, date], tuple[str, Decimal]]  # (email, date) -> ("add"|"set", cost)


@dataclass(slots=True)
class LedgerRow:
    """One request, as recorded. Field order is the ledger's column order."""

    id: str
    ts: datetime  # UTC, naive
    date: date
    email: str
    provider: str
    path: str
    model: str
    status: int
    outcome: str  # ok | error | aborted | broken | refused
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost: Decimal
    cost_source: str  # reported | computed | estimated | free
    latency_ms: float
    streamed: bool
    origin: str


class StoreLocked(RuntimeError):
    """Another process (a running relay) holds the database file."""


class LedgerError(RuntimeError):
    """The database (or the store worker) failed an operation; buffered rows are kept."""


class Ledger(Protocol):
    """What `Store` needs from the database: `LedgerDB` in process, `LedgerProcess` beside it."""

    def open(self, mirror_since: date | None) -> list[tuple[str, date, Decimal]]: ...
    def write(
        self, batch: str, columns: Sequence[list], days: DayUpserts, *, retry: bool = False
    ) -> bool: ...
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]: ...
    def export(self, out: Path, fmt: str) -> int: ...
    def idle(self) -> None: ...
    def close(self) -> None: ...
