"""`aipipe` command line: serve, token, usage, export, prices, demo-data."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from relay.auth.tokens import issue_token
from relay.policy import PolicyError
from relay.providers.registry import BY_NAME
from relay.settings import Settings, SettingsError, load_settings
from relay.store import LedgerError, Store, StoreLocked

if TYPE_CHECKING:
    from starlette.applications import Starlette

RUNNING_FILE = "relay.json"  # written by `serve` so CLI commands can reach a running relay


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (SettingsError, PolicyError) as e:
        print(f"aipipe: {e}", file=sys.stderr)
        return 2
    except LedgerError as e:  # the database (DuckDB file or PostgreSQL) failed or is away
        print(f"aipipe: {e}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aipipe", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the relay and its pages")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument(
        "--dev", action="store_true", help="local trial: generated secret, dev sign-in, demo model"
    )
    serve.add_argument(
        "--grace", type=float, default=20.0, help="seconds in-flight streams get on shutdown"
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="relay processes on this port (PostgreSQL store)"
    )
    serve.set_defaults(run=cmd_serve)

    token = sub.add_parser("token", help="print a token for EMAIL")
    token.add_argument("email")
    token.add_argument("--dev", action="store_true", help="use the --dev secret from the data dir")
    token.set_defaults(run=cmd_token)

    usage = sub.add_parser("usage", help="print spend against budget")
    usage.add_argument("email", nargs="?")
    usage.add_argument("--dev", action="store_true")
    usage.set_defaults(run=cmd_usage)

    export = sub.add_parser("export", help="write the ledger to FILE (.parquet or .csv)")
    export.add_argument("--out", required=True, type=Path)
    export.add_argument("--dev", action="store_true")
    export.set_defaults(run=cmd_export)

    copy = sub.add_parser(
        "copy", help="copy a DuckDB install (ledger and day totals) into PostgreSQL; idempotent"
    )
    copy.add_argument("--from", dest="source", required=True, type=Path, help="the DuckDB file")
    copy.add_argument("--to", dest="target", help="postgresql:// URL (default: AIPIPE_DATABASE_URL)")
    copy.set_defaults(run=cmd_copy)

    prices = sub.add_parser("prices", help="show the price table; flag ledger models with no price")
    prices.add_argument("--dev", action="store_true")
    prices.set_defaults(run=cmd_prices)

    demo = sub.add_parser("demo-data", help="write a synthetic ledger for the notebooks")
    demo.add_argument("--out", required=True, type=Path)
    demo.add_argument("--rows", type=int, default=100_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=cmd_demo_data)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from relay.app import create_app
    from relay.logs import configure_logging

    settings = load_settings(dev=args.dev)
    configure_logging()
    url = f"http://{args.host}:{args.port}"
    running = settings.data_dir / RUNNING_FILE
    if args.workers < 1:
        raise SettingsError("--workers must be 1 or more")
    if args.workers > 1 and not settings.database_url:
        print(
            f"aipipe: --workers {args.workers} needs the PostgreSQL store: the DuckDB file can be "
            "written by one process only. Set AIPIPE_DATABASE_URL=postgresql://user:pass@host/db "
            "(docs/scale-out.md), or run one worker",
            file=sys.stderr,
        )
        return 2
    if not settings.database_url and Store.in_use(settings.db_path):
        where = _recorded(running).get("url")
        print(
            f"aipipe: {settings.db_path} is in use by another relay"
            + (f" ({where})" if where else "")
            + ": stop it first, or give this one another AIPIPE_DATA_DIR",
            file=sys.stderr,
        )
        return 1
    _banner(settings, url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    # SIGHUP reloads the policy once the app runs (relay.app); until then it must not kill us.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def record_running() -> None:  # only once this process owns the database
        running.write_text(json.dumps({"url": url, "pid": os.getpid()}))

    try:
        if args.workers > 1:
            record_running()
            return _serve_workers(settings, args)
        uvicorn.run(
            create_app(settings, on_ready=record_running),
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,  # the relay writes one JSON line per request itself
            timeout_graceful_shutdown=int(args.grace),
            server_header=False,
            # The client's address comes from the relay's edge, which believes X-Forwarded-For
            # only from AIPIPE_TRUSTED_PROXIES; uvicorn's own reading trusts 127.0.0.1 by default.
            proxy_headers=False,
        )
    finally:
        if _recorded(running).get("pid") == os.getpid():  # never another relay's record
            running.unlink(missing_ok=True)
    return 0


def _serve_workers(settings: Settings, args: argparse.Namespace) -> int:
    """N relay processes sharing one listening socket (uvicorn's supervisor: it replaces a worker
    that dies). Each builds its own app from these settings; PostgreSQL is what they share."""
    import functools

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        functools.partial(worker_app, settings),
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(args.grace),
        server_header=False,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
    return 0


def worker_app(settings: Settings) -> Starlette:
    """The app of one `--workers` process (a fresh interpreter: its logging is set up here)."""
    from relay.app import create_app
    from relay.logs import configure_logging

    configure_logging()
    return create_app(settings)


def _recorded(running: Path) -> dict:
    """What `serve` wrote in data/relay.json ({} when there is no readable record)."""
    try:
        data = json.loads(running.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _banner(settings: Settings, url: str) -> None:
    lines = [f"AI Pipe relay on {url}  (data: {settings.data_dir})"]
    if settings.dev:
        lines.append(
            "  --dev: dev sign-in at /login (loopback only); generated secret kept in the data dir"
        )
        if "openai" not in settings.provider_keys:
            lines.append(
                "  --dev: no OPENAI_API_KEY, so /openai answers the built-in demo model 'aipipe-demo'"
            )
    if settings.database_url:
        where = urlsplit(settings.database_url)  # never the password
        lines.append(f"  store: PostgreSQL at {where.hostname}:{where.port or 5432}{where.path}")
    missing = [p.name for p in BY_NAME.values() if p.name not in settings.provider_keys]
    if missing:
        lines.append(f"  providers without a key: {', '.join(missing)}")
    print("\n".join(lines), flush=True)


def cmd_token(args: argparse.Namespace) -> int:
    settings = load_settings(dev=args.dev)
    if "@" not in args.email:
        print("aipipe: EMAIL must be an email address", file=sys.stderr)
        return 2
    print(issue_token(settings, args.email))
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    settings = load_settings(dev=args.dev)
    rows = _daily_rows(settings, args.email)
    emails = sorted({e for e, _, _ in rows} | ({args.email.lower()} if args.email else set()))
    from relay.clock import utc_today

    today = utc_today()
    print(f"{'email':40} {'spend':>12} {'limit':>10} days")
    for email in emails:
        budget = settings.policy.budget_for(email)
        spent = sum(
            (c for e, d, c in rows if e == email and (today - d).days < budget.days), Decimal(0)
        )
        print(f"{email:40} {spent:12.6f} {budget.limit:10.4f} {budget.days}")
    return 0


def _daily_rows(settings: Settings, email: str | None) -> list[tuple]:
    sql = "SELECT email, date, cost FROM daily"
    if settings.database_url:
        return _pg(settings, "read", sql + " WHERE email = ?", [email.lower()]) if email else _pg(
            settings, "read", sql
        )
    try:
        store = Store(settings.db_path).open(background=False)
    except StoreLocked:
        return _daily_rows_from_relay(settings, email)
    try:
        sql = "SELECT email, date, cost FROM daily"
        return store.query(sql + " WHERE email = ?", [email.lower()]) if email else store.query(sql)
    finally:
        store.close()


def _daily_rows_from_relay(settings: Settings, email: str | None) -> list[tuple]:
    from datetime import date

    url, headers = _running_relay(settings)
    params = {"limit": "10000", **({"email": email} if email else {})}
    resp = httpx.get(f"{url}/admin/usage", params=params, headers=headers, timeout=60)
    resp.raise_for_status()
    return [
        (r["email"], date.fromisoformat(r["date"]), Decimal(str(r["cost"])))
        for r in resp.json()["data"]
    ]


def cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings(dev=args.dev)
    fmt = _format_of(args.out)
    if settings.database_url:
        count = _pg(settings, "export_file", args.out, fmt)
        print(f"wrote {count} rows to {args.out}")
        return 0
    try:
        store = Store(settings.db_path).open(background=False)
    except StoreLocked:
        # The relay owns the file: ask it for the export instead.
        url, headers = _running_relay(settings)
        with httpx.stream(
            "GET", f"{url}/admin/export", params={"format": fmt}, headers=headers, timeout=600
        ) as resp:
            resp.raise_for_status()
            with args.out.open("wb") as f:
                for chunk in resp.iter_bytes():
                    f.write(chunk)
        print(f"wrote {args.out} (from the running relay at {url})")
        return 0
    try:
        count = store.export(args.out, fmt)
    finally:
        store.close()
    print(f"wrote {count} rows to {args.out}")
    return 0


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("parquet", "csv"):
        raise SettingsError(f"{path}: the file name must end in .parquet or .csv")
    return suffix


def _running_relay(settings: Settings) -> tuple[str, dict[str, str]]:
    url = _recorded(settings.data_dir / RUNNING_FILE).get("url")
    if not url:
        raise SettingsError(
            f"{settings.db_path} is locked by another process and no running relay is recorded"
        )
    token = issue_token(settings, "operator@aipipe.local", operator=True)
    return url, {"authorization": f"Bearer {token}"}


def cmd_prices(args: argparse.Namespace) -> int:
    from relay.costing.pricing import PriceTable

    table = PriceTable.load()
    settings = load_settings(dev=args.dev)
    print(table.describe())
    sql = (
        "SELECT provider, model, count(*), max(ts) FROM requests WHERE model <> '' "
        "GROUP BY provider, model ORDER BY provider, model"
    )
    if settings.database_url:
        seen = _pg(settings, "read", sql)
    else:
        try:
            store = Store(settings.db_path).open(background=False)
        except StoreLocked:
            print("\n(the relay is running: cannot read the ledger for unpriced models)")
            return 0
        try:
            seen = store.query(sql)
        finally:
            store.close()
    # Providers priced by this table (OpenRouter reports its own cost: never flagged).
    tabled = {p.name for p in BY_NAME.values() if p.priced_by_table}
    unpriced = [row for row in seen if row[0] in tabled and table.lookup(row[0], row[1]) is None]
    if unpriced:
        print("\nModels in the ledger with no price (add them to the price file):")
        for provider, model, count, last in unpriced:
            print(f"  {provider:<10} {model:<30} {count} requests, last {last:%Y-%m-%d}")
    else:
        print("\nEvery model in the ledger has a price.")
    return 0


def _pg(settings: Settings, method: str, *args: object) -> object:
    """One call on the PostgreSQL store, from the command line (no relay needs to run)."""
    import asyncio

    from relay.store.postgres import PgStore

    async def run() -> object:
        assert settings.database_url is not None
        store = await PgStore(settings.database_url).open(background=False)
        try:
            return await getattr(store, method)(*args)
        finally:
            await store.aclose()

    return asyncio.run(run())


def cmd_copy(args: argparse.Namespace) -> int:
    from relay.store.copy import copy_to_postgres

    target = args.target or load_settings().database_url
    if not target:
        raise SettingsError("say where to copy to: --to postgresql://... or AIPIPE_DATABASE_URL")
    if not args.source.is_file():
        raise SettingsError(f"{args.source}: no such DuckDB file")
    if Store.in_use(args.source):
        raise SettingsError(f"{args.source} is in use by a running relay: stop it first")
    report = copy_to_postgres(args.source, target)
    for name, side in (("DuckDB", report.source), ("PostgreSQL", report.target)):
        print(
            f"{name:10} {side.rows:>10} ledger rows, ledger cost {side.ledger_cost:.10f}, "
            f"day totals {side.daily_cost:.10f}"
        )
    print(f"added {report.rows_added} ledger rows (rows already copied are skipped)")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from relay.demo_data import write_demo_ledger

    _format_of(args.out)
    if args.rows < 1:
        raise SettingsError("--rows must be at least 1")
    count = write_demo_ledger(args.out, args.rows, seed=args.seed)
    print(f"wrote {count} rows to {args.out}")
    return 0
