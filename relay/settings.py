"""Configuration: environment + `.env` + the TOML policy file, read once into one Settings object.

This is the only module that reads the environment. Every variable is listed in ENV_VARS (and in
the README's table; a test keeps the two in step).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from dotenv import dotenv_values

from relay.policy import Budget, Policy, load_policy
from relay.providers.egress import Egress, EgressError, parse_egress
from relay.providers.registry import BY_NAME

PUBLIC_BASES = {p.name: p.public_base for p in BY_NAME.values()}
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
DEFAULT_WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# name -> meaning. The README's configuration table is checked against this.
ENV_VARS: dict[str, str] = {
    # Each provider's key and base-URL variables, from its registry entry.
    **{p.key_var: f"{p.name} key" for p in BY_NAME.values()},
    **{p.base_var: f"{p.name} upstream base URL" for p in BY_NAME.values()},
    "AIPIPE_SECRET": "HS256 signing key for tokens (>= 32 bytes); --dev generates one in the data dir",
    "AIPIPE_DATA_DIR": "where the DuckDB file and other state live",
    "AIPIPE_CONFIG": "path to the TOML policy file",
    "ADMIN_EMAILS": "admin emails, separated by commas and/or whitespace",
    "GOOGLE_CLIENT_ID": "OAuth client id for Google Sign-In",
    "AIPIPE_GOOGLE_CERTS_URL": "where Google's public signing certs are fetched",
    "AIPIPE_ALLOWED_ORIGINS": "origins that receive a token from /login?redirect= without a prompt",
    "AIPIPE_TOKEN_DAYS": "lifetime of issued tokens in days (sets `exp`)",
    "AIPIPE_WEB_DIR": "directory of the browser pages",
    "AIPIPE_MAX_BODY_MB": "largest request body accepted",
    "AIPIPE_UPSTREAM_TIMEOUT": "seconds to connect to a provider",
    "AIPIPE_STREAM_IDLE_TIMEOUT": "seconds a stream may stay silent before it is cut",
    "AIPIPE_FLUSH_SECONDS": "how often buffered ledger rows are written to DuckDB",
    "AIPIPE_STORE_IDLE": "seconds without ledger work before the DuckDB worker process stops (0: in process)",
    "AIPIPE_NATIVE_KEYS": "pass callers' own provider keys (sk-…, AIza…) straight through (on/off)",
    "AIPIPE_TRUSTED_PROXIES": "addresses/networks whose X-Forwarded-For / Forwarded is believed",
    "AIPIPE_METRICS_TOKEN": "bearer token GET /metrics asks for (unset: open)",
    # Read as curl and httpx read them; a lower-case name wins over the upper-case one.
    "HTTPS_PROXY": "egress proxy for https:// provider calls (CONNECT)",
    "HTTP_PROXY": "egress proxy for http:// provider calls",
    "NO_PROXY": "hosts, domains and networks reached without the egress proxy",
    "AIPIPE_DATABASE_URL": "postgresql://user:pass@host:port/db: the shared PostgreSQL store (unset: DuckDB)",
    "AIPIPE_DATABASE_POOL": "PostgreSQL connections per relay process",
    "AIPIPE_LEASE_SECONDS": "how long a reservation outlives a relay that stopped renewing it (PostgreSQL)",
}

# --dev with no policy file / no admins: every user gets $1 a week; the dev sign-in as
# admin@example.com opens the admin page.
DEV_POLICY = Policy(budgets={"*": Budget(limit=Decimal("1.00"), days=7)})
DEV_ADMINS = frozenset({"admin@example.com"})

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """Configuration that stops start-up; the message names the variable or file."""

@dataclass(frozen=True)
class Settings:
    secret: str = field(repr=False)
    data_dir: Path
    policy: Policy = field(default_factory=Policy)
    config_path: Path | None = None
    admin_emails: frozenset[str] = frozenset()
    google_client_id: str | None = None
    google_certs_url: str = GOOGLE_CERTS_URL
    provider_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    provider_bases: Mapping[str, str] = field(default_factory=lambda: dict(PUBLIC_BASES))
    allowed_origins: tuple[str, ...] = ()
    token_days: float | None = None
    web_dir: Path = DEFAULT_WEB_DIR
    max_body_bytes: int = 25 * 1024 * 1024
    upstream_timeout: float = 60.0
    stream_idle_timeout: float = 120.0
    flush_seconds: float = 0.5
    store_idle: float = 60.0  # 0: DuckDB inside the relay process, no store worker
    native_keys: bool = True  # callers' own provider keys pass straight through
    trusted_proxies: tuple[IPNetwork, ...] = ()
    metrics_token: str | None = field(default=None, repr=False)
    egress: Egress | None = field(default=None, repr=False)  # its URLs may hold credentials
    database_url: str | None = field(default=None, repr=False)  # PostgreSQL store (may hold a password)
    database_pool: int = 10
    lease_seconds: float = 60.0
    dev: bool = False

    @property
    def db_path(self) -> Path:
        return self.data_dir / "aipipe.duckdb"

def load_settings(
    environ: Mapping[str, str] | None = None, *, dev: bool = False, cwd: Path | None = None
) -> Settings:
    """Read the environment (and `.env` in cwd; the real environment wins) into Settings."""
    cwd = cwd or Path.cwd()
    env: dict[str, str] = {}
    dotenv = cwd / ".env"
    if dotenv.is_file():
        env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    data_dir = Path(env.get("AIPIPE_DATA_DIR") or cwd / "data")
    config_path = _config_path(env, cwd)
    policy = load_policy(config_path)
    admins = frozenset(_split(env.get("ADMIN_EMAILS", "").lower()))
    if dev and config_path is None:
        policy = DEV_POLICY  # a local trial works with nothing configured
    if dev and not admins and not policy.admins:
        admins = DEV_ADMINS
    return Settings(
        secret=_secret(env.get("AIPIPE_SECRET"), data_dir, dev),
        data_dir=data_dir,
        policy=policy,
        config_path=config_path,
        admin_emails=admins,
        google_client_id=env.get("GOOGLE_CLIENT_ID") or None,
        google_certs_url=env.get("AIPIPE_GOOGLE_CERTS_URL") or GOOGLE_CERTS_URL,
        provider_keys={p.name: env[p.key_var] for p in BY_NAME.values() if env.get(p.key_var)},
        provider_bases={
            p.name: (env.get(p.base_var) or p.public_base).rstrip("/") for p in BY_NAME.values()
        },
        allowed_origins=tuple(o.rstrip("/") for o in _split(env.get("AIPIPE_ALLOWED_ORIGINS", ""))),
        token_days=_number(env, "AIPIPE_TOKEN_DAYS", None),
        web_dir=Path(env["AIPIPE_WEB_DIR"]) if env.get("AIPIPE_WEB_DIR") else DEFAULT_WEB_DIR,
        max_body_bytes=int((_number(env, "AIPIPE_MAX_BODY_MB", 25.0) or 25.0) * 1024 * 1024),
        upstream_timeout=_number(env, "AIPIPE_UPSTREAM_TIMEOUT", 60.0) or 60.0,
        stream_idle_timeout=_number(env, "AIPIPE_STREAM_IDLE_TIMEOUT", 120.0) or 120.0,
        flush_seconds=_number(env, "AIPIPE_FLUSH_SECONDS", 0.5) or 0.5,
        store_idle=_number(env, "AIPIPE_STORE_IDLE", 60.0, allow_zero=True) or 0.0,
        native_keys=_flag(env, "AIPIPE_NATIVE_KEYS", True),
        trusted_proxies=_networks(env.get("AIPIPE_TRUSTED_PROXIES", "")),
        metrics_token=env.get("AIPIPE_METRICS_TOKEN") or None,
        egress=_egress(env),
        database_url=_database_url(env.get("AIPIPE_DATABASE_URL")),
        database_pool=int(_number(env, "AIPIPE_DATABASE_POOL", 10) or 10),
        lease_seconds=_number(env, "AIPIPE_LEASE_SECONDS", 60.0) or 60.0,
        dev=dev,
    )

def _database_url(value: str | None) -> str | None:
    if not value:
        return None
    if not value.startswith(("postgresql://", "postgres://")):
        raise SettingsError(
            "AIPIPE_DATABASE_URL must be a postgresql:// URL (unset it to use the DuckDB file)"
        )
    return value

def _split(value: str) -> list[str]:
    return [part for part in value.replace(",", " ").split() if part]

def _networks(value: str) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(part, strict=False) for part in _split(value))
    except ValueError as e:
        raise SettingsError(f"AIPIPE_TRUSTED_PROXIES: {e} (give addresses or networks)") from e


def _egress(env: Mapping[str, str]) -> Egress | None:
    def read(name: str) -> str:  # lower case first, as curl and Python's urllib do
        return (env.get(name.lower()) or env.get(name) or "").strip()

    try:
        return parse_egress(read("HTTPS_PROXY"), read("HTTP_PROXY"), read("NO_PROXY"))
    except EgressError as e:
        raise SettingsError(str(e)) from e


def _config_path(env: Mapping[str, str], cwd: Path) -> Path | None:
    if env.get("AIPIPE_CONFIG"):
        return Path(env["AIPIPE_CONFIG"])
    default = cwd / "aipipe.toml"
    return default if default.is_file() else None

def _number(
    env: Mapping[str, str], name: str, default: float | None, *, allow_zero: bool = False
) -> float | None:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise SettingsError(f"{name}={raw!r} is not a number") from e
    if allow_zero and value == 0:
        return value
    if not value > 0:
        raise SettingsError(f"{name} must be {'0 or more' if allow_zero else 'greater than 0'}")
    return value

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _TRUE + _FALSE:
        raise SettingsError(f"{name}={env[name]!r}: use one of {', '.join(_TRUE + _FALSE)}")
    return raw in _TRUE


def _secret(value: str | None, data_dir: Path, dev: bool) -> str:
    if value:
        if len(value.encode()) < 32:
            raise SettingsError(
                "AIPIPE_SECRET must be at least 32 bytes (try: openssl rand -hex 32)"
            )
        return value
    if not dev:
        raise SettingsError(
            "AIPIPE_SECRET is not set: set it to at least 32 random bytes "
            "(openssl rand -hex 32), or run `aipipe serve --dev` for a local trial"
        )
    # Dev mode: generate once, keep it so tokens survive restarts.
    path = data_dir / "dev-secret"
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    path.write_text(secret)
    path.chmod(0o600)
    return secret
