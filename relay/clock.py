"""The relay's one clock: UTC, naive datetimes (as the ledger stores them) and UTC dates."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def utc_today() -> date:
    return datetime.now(UTC).date()
