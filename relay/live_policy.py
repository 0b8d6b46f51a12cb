"""The policy in force, and how it changes while the relay runs: `SIGHUP` reloads the file.

Everything that reads budgets, salts or admins at request time (budget checks, token checks,
admin checks, issuing tokens) reads them through the app's one `LivePolicy`. A reload parses the
whole file first and then swaps one reference, so a request sees either the old policy or the new
one, never a mix, and none is dropped. A file that cannot be used changes nothing: the old policy
stays, and the reason is logged and shown in `/healthz`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from relay.policy import Budget, Policy, PolicyError, read_policy_file
from relay.settings import Settings

log = logging.getLogger("aipipe")
BUILT_IN = "built-in"


@dataclass(frozen=True, slots=True)
class Loaded:
    """One policy and where it came from: what `/healthz` shows so an operator can see that
    every replica took a change (the same digest) and when."""

    policy: Policy
    digest: str  # "sha256:<hex of the file's bytes>": compare with `sha256sum aipipe.toml`
    loaded_at: datetime
    source: str  # the file's path, or "built-in"


def _now() -> datetime:
    return datetime.now(UTC)


class LivePolicy:
    """Requests read `current` (directly or through the helpers below); `reload()` replaces it
    whole, or not at all."""

    def __init__(
        self,
        policy: Policy,
        path: Path | None = None,
        *,
        raw: bytes | None = None,
        env_admins: frozenset[str] = frozenset(),
        clock: Callable[[], datetime] = _now,
    ):
        self.path = path
        self.env_admins = env_admins  # ADMIN_EMAILS (and --dev's admin): fixed at start
        self._clock = clock
        self.current = policy
        digest = _digest(raw) if raw is not None else BUILT_IN
        self.loaded = Loaded(policy, digest, clock(), str(path) if path else BUILT_IN)
        self.last_error: str | None = None
        self.listeners: list[Callable[[Policy], None]] = []  # told of a new policy before the swap

    @classmethod
    def start(cls, settings: Settings) -> LivePolicy:
        """The policy the relay starts with: the file read now (so its digest is what is in
        force), else the settings' own (built in: --dev's, or a test's)."""
        path = settings.config_path
        if path is None:
            return cls(settings.policy, env_admins=settings.admin_emails)
        policy, raw = read_policy_file(path)
        return cls(policy, path, raw=raw, env_admins=settings.admin_emails)

    # -- what requests read -----------------------------------------------------------------
    def budget_for(self, email: str) -> Budget:
        return self.current.budget_for(email)

    def salt_for(self, email: str) -> str | None:
        return self.current.salt_for(email)

    def default_budget(self) -> Budget | None:
        return self.current.default_budget()

    def longest_window(self) -> int:
        return self.current.longest_window()

    def is_admin(self, email: str) -> bool:
        email = email.lower()
        return email in self.env_admins or email in self.current.admins

    # -- reload -----------------------------------------------------------------------------
    def reload(self) -> bool:
        """Read the policy file again. True when the new policy is in force; False when the file
        cannot be used (the old policy kept, the reason logged and kept in `last_error`)."""
        if self.path is None:
            self.last_error = "no policy file to reload (the relay started without AIPIPE_CONFIG)"
            log.warning("policy reload: %s; keeping the built-in policy", self.last_error)
            return False
        try:
            policy, raw = read_policy_file(self.path)
        except PolicyError as e:
            self.last_error = str(e)
            log.error(
                "policy reload failed: %s; keeping the policy loaded at %s (%s)",
                e, self.loaded.loaded_at.isoformat(), self.loaded.digest,
            )
            return False
        try:
            for listener in self.listeners:
                listener(policy)  # e.g. the store reads the days a longer window needs
        except Exception as e:  # whatever a listener raises, the reload must not half-happen
            self.last_error = f"{self.path}: could not be applied: {e}"
            log.exception("policy reload failed: %s; keeping the previous policy", self.last_error)
            return False
        self.loaded = Loaded(policy, _digest(raw), self._clock(), str(self.path))
        self.current = policy
        self.last_error = None
        log.info("policy reloaded from %s (%s)", self.path, self.loaded.digest)
        return True

    def describe(self) -> dict[str, str | None]:
        """What /healthz shows."""
        return {
            "source": self.loaded.source,
            "digest": self.loaded.digest,
            "loaded_at": self.loaded.loaded_at.isoformat().replace("+00:00", "Z"),
            "reload_error": self.last_error,
        }


def _digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()
