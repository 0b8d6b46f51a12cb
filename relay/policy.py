"""The operator's policy file (TOML): budgets, salts, admins, rate limits — parsed and validated once."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file, the key and the problem."""


@dataclass(frozen=True, slots=True)
class Budget:
    limit: Decimal  # USD over the window
    days: int  # rolling window of UTC dates, today included
    rpm: int | None = None  # requests per minute; None = no rate limit


NO_BUDGET = Budget(limit=Decimal(0), days=1)


@dataclass(frozen=True)
class Policy:
    budgets: dict[str, Budget] = field(default_factory=dict)  # keys: email, "@domain", "*"
    salts: dict[str, str] = field(default_factory=dict)
    admins: frozenset[str] = frozenset()

    def budget_for(self, email: str) -> Budget:
        """Exact email (case-insensitive), then @domain, then "*"; else no budget (limit 0)."""
        email = email.lower()
        if email in self.budgets:
            return self.budgets[email]
        domain = "@" + email.rpartition("@")[2]
        if domain in self.budgets:
            return self.budgets[domain]
        return self.budgets.get("*", NO_BUDGET)

    def longest_window(self) -> int:
        """Days of spend budget checks can ask for: what the store keeps in memory."""
        return max((b.days for b in self.budgets.values()), default=1)

    def default_budget(self) -> Budget | None:
        return self.budgets.get("*")

    def salt_for(self, email: str) -> str | None:
        return self.salts.get(email.lower())


class PolicyView(Protocol):
    """What request handling reads: a `Policy`, or the app's `LivePolicy` (the one in force)."""

    def budget_for(self, email: str) -> Budget: ...
    def salt_for(self, email: str) -> str | None: ...
    def default_budget(self) -> Budget | None: ...


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return Policy()
    return read_policy_file(path)[0]


def read_policy_file(path: Path) -> tuple[Policy, bytes]:
    """The policy in `path`, and the bytes it was read from (their digest identifies it)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise PolicyError(f"{path}: file not found") from e
    except OSError as e:
        raise PolicyError(f"{path}: cannot be read: {e.strerror or e}") from e
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise PolicyError(f"{path}: not valid TOML: {e}") from e
    return parse_policy(data, str(path)), raw


def parse_policy(data: dict[str, Any], where: str = "policy") -> Policy:
    known = {"budget", "salt", "admins"}
    for key in data:
        if key not in known:
            raise PolicyError(f"{where}: unknown section [{key}] (expected one of {sorted(known)})")
    budgets = {
        _budget_key(k, where): _parse_budget(v, f"{where}: [budget] {k!r}")
        for k, v in _table(data, "budget", where).items()
    }
    salts: dict[str, str] = {}
    for k, v in _table(data, "salt", where).items():
        if not isinstance(v, str) or not v:
            raise PolicyError(f"{where}: [salt] {k!r}: salt must be a non-empty string")
        salts[k.lower()] = v
    admins = data.get("admins", [])
    if not isinstance(admins, list) or not all(isinstance(a, str) and "@" in a for a in admins):
        raise PolicyError(f"{where}: admins: must be a list of email addresses")
    return Policy(budgets=budgets, salts=salts, admins=frozenset(a.lower() for a in admins))


def _table(data: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise PolicyError(f"{where}: [{name}] must be a table")
    return table


def _budget_key(key: str, where: str) -> str:
    if key != "*" and "@" not in key:
        raise PolicyError(f"{where}: [budget] {key!r}: key must be an email, '@domain' or '*'")
    return key.lower()


def _parse_budget(value: Any, where: str) -> Budget:
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: must be a table like {{ limit = 0.1, days = 7 }}")
    unknown = set(value) - {"limit", "days", "rpm"}
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {sorted(unknown)}")
    if "limit" not in value:
        raise PolicyError(f"{where}: 'limit' is required")
    raw = value["limit"]
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise PolicyError(f"{where}: limit must be a number of USD")
    try:
        limit = Decimal(str(raw))  # str() keeps the written decimal digits of a TOML float
    except InvalidOperation as e:
        raise PolicyError(f"{where}: limit {raw!r} is not a number") from e
    if not limit.is_finite() or limit < 0:
        raise PolicyError(f"{where}: limit must be a finite number >= 0")
    days = value.get("days", 7)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
        raise PolicyError(f"{where}: days must be a whole number from 1 to 366")
    rpm = value.get("rpm")
    if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1):
        raise PolicyError(f"{where}: rpm must be a whole number >= 1")
    return Budget(limit=limit, days=days, rpm=rpm)
