"""The notebooks' shared module: data-source choice, export download, budgets and the queries."""

from __future__ import annotations

import csv
import os
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx
import pytest

from relay import analysis
from relay.demo_data import policy_path_for, write_demo_ledger
from relay.store.migrations import LEDGER_COLUMNS

END = date(2025, 6, 30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ledger") / "usage.parquet"
    write_demo_ledger(out, 200_000, end=END)
    return out


@pytest.fixture(scope="module")
def con(demo: Path) -> duckdb.DuckDBPyConnection:
    return analysis.connect(analysis.choose_source({"AIPIPE_USAGE": str(demo)}))


def write_ledger(path: Path, rows: list[dict[str, object]]) -> Path:
    """A hand-made ledger CSV; unspecified columns get plausible defaults."""
    defaults: dict[str, object] = {
        "provider": "openai", "path": "/v1/chat/completions", "model": "gpt-4o-mini",
        "status": 200, "outcome": "ok", "input_tokens": 10, "output_tokens": 5,
        "cached_tokens": 0, "reasoning_tokens": 0, "cost": "0", "cost_source": "computed",
        "latency_ms": 100.0, "streamed": False, "origin": "",
    }  # fmt: skip
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[n for n, _ in LEDGER_COLUMNS])
        writer.writeheader()
        for n, row in enumerate(rows):
            ts = row.get("ts", datetime(2025, 6, 30, 12) + timedelta(seconds=n))
            assert isinstance(ts, datetime)
            writer.writerow({**defaults, "id": f"{n:032x}", "ts": ts, "date": ts.date(), **row})
    return path


# ---------------------------------------------------------------- choosing the data source

def test_usage_file_wins_and_finds_the_policy_beside_it(demo: Path) -> None:
    """AIPIPE_USAGE is used as is, ahead of a relay URL, with `<name>.policy.toml` beside it."""
    src = analysis.choose_source({"AIPIPE_USAGE": str(demo), "AIPIPE_URL": "http://x.invalid"})
    assert (src.kind, src.ledger, src.policy) == ("file", demo, policy_path_for(demo))
    assert str(demo) in src.note


def test_config_overrides_the_policy_and_bad_paths_are_named(demo: Path, tmp_path: Path) -> None:
    """AIPIPE_CONFIG picks the policy; a missing file names the variable and the path."""
    policy = tmp_path / "aipipe.toml"
    policy.write_text('[budget]\n"*" = { limit = 3, days = 2 }\n')
    env = {"AIPIPE_USAGE": str(demo), "AIPIPE_CONFIG": str(policy)}
    assert analysis.choose_source(env).policy == policy
    with pytest.raises(analysis.SourceError, match=r"AIPIPE_USAGE=.*nope\.parquet"):
        analysis.choose_source({"AIPIPE_USAGE": str(tmp_path / "nope.parquet")})
    with pytest.raises(analysis.SourceError, match="AIPIPE_CONFIG"):
        analysis.choose_source({**env, "AIPIPE_CONFIG": str(tmp_path / "none.toml")})


def test_relay_url_downloads_the_parquet_export_with_the_admin_token(
    demo: Path, tmp_path: Path
) -> None:
    """AIPIPE_URL + AIPIPE_ADMIN_TOKEN: GET /admin/export?format=parquet with a Bearer token."""
    seen: list[httpx.Request] = []

    def relay(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=demo.read_bytes())

    env = {"AIPIPE_URL": "http://relay.test/", "AIPIPE_ADMIN_TOKEN": "tok-123"}
    src = analysis.choose_source(env, cache_dir=tmp_path, transport=httpx.MockTransport(relay))
    assert src.kind == "relay" and src.policy is None
    assert str(seen[0].url) == "http://relay.test/admin/export?format=parquet"
    assert seen[0].headers["authorization"] == "Bearer tok-123"
    assert src.ledger.read_bytes() == demo.read_bytes()
    assert analysis.summary(analysis.connect(src))["requests"][0] == 200_000


def test_relay_errors_are_clear_and_never_echo_the_token(tmp_path: Path) -> None:
    """A refused download says the URL, the status and the relay's message; no token, no file."""
    def relay(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"message": "Not an admin", "error": {}})

    env = {"AIPIPE_URL": "http://relay.test", "AIPIPE_ADMIN_TOKEN": "secret-token-xyz"}
    with pytest.raises(analysis.SourceError, match="HTTP 401: Not an admin") as err:
        analysis.choose_source(env, cache_dir=tmp_path, transport=httpx.MockTransport(relay))
    assert "secret-token-xyz" not in str(err.value)
    assert not list(tmp_path.glob("export.parquet*"))
    with pytest.raises(analysis.SourceError, match="AIPIPE_ADMIN_TOKEN"):
        analysis.choose_source({"AIPIPE_URL": "http://relay.test"}, cache_dir=tmp_path)


def test_no_setting_generates_demo_data_once(tmp_path: Path) -> None:
    """With nothing set, a demo ledger and its policy are generated, then reused."""
    src = analysis.choose_source({}, cache_dir=tmp_path, demo_rows=2000)
    assert src.kind == "demo" and src.policy is not None and src.policy.is_file()
    stamp = os.stat(src.ledger).st_mtime_ns
    again = analysis.choose_source({}, cache_dir=tmp_path, demo_rows=2000)
    assert again.ledger == src.ledger and os.stat(again.ledger).st_mtime_ns == stamp
    assert analysis.summary(analysis.connect(src))["requests"][0] == 2000


def test_csv_and_parquet_exports_give_the_same_answers(tmp_path: Path) -> None:
    """A CSV export (empty strings and all) reads to the same ledger as the Parquet one."""
    write_demo_ledger(tmp_path / "u.parquet", 3000, end=END)
    write_demo_ledger(tmp_path / "u.csv", 3000, end=END)
    a = analysis.connect(analysis.choose_source({"AIPIPE_USAGE": str(tmp_path / "u.parquet")}))
    b = analysis.connect(analysis.choose_source({"AIPIPE_USAGE": str(tmp_path / "u.csv")}))
    q = "SELECT * FROM requests ORDER BY id"
    assert a.execute(q).fetchall() == b.execute(q).fetchall()


def test_a_file_that_is_not_a_ledger_is_refused(tmp_path: Path) -> None:
    """Connecting to some other table names the missing ledger columns."""
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(analysis.SourceError, match="missing columns"):
        analysis.connect(analysis.choose_source({"AIPIPE_USAGE": str(other)}))


# ---------------------------------------------------------------- budgets

def test_budget_lookup_follows_the_relays_order(tmp_path: Path) -> None:
    """Exact email (any case), then @domain, then "*"; spend counts only the current window."""
    ledger = write_ledger(tmp_path / "l.csv", [
        {"email": "Vip@uni.edu", "cost": "2.5"},
        {"email": "ann@uni.edu", "cost": "0.5"},
        {"email": "ann@uni.edu", "cost": "9", "ts": datetime(2025, 6, 1, 9)},  # outside 7 days
        {"email": "bob@else.org", "cost": "0.05"},
    ])  # fmt: skip
    policy = tmp_path / "p.toml"
    policy.write_text(
        '[budget]\n"*" = { limit = 0.10, days = 7 }\n"@uni.edu" = { limit = 1, days = 7 }\n'
        '"vip@uni.edu" = { limit = 10, days = 30 }\n'
    )
    con = analysis.connect(analysis.Source("file", ledger, policy, ""))
    use = analysis.budget_use(con).set_index("email")
    assert use.loc["Vip@uni.edu", ["rule", "limit_usd", "days"]].tolist() == ["vip@uni.edu", 10, 30]
    assert use.loc["ann@uni.edu", ["rule", "window_spend", "use_share"]].tolist() == [
        "@uni.edu", 0.5, 0.5
    ]
    assert use.loc["bob@else.org", ["rule", "limit_usd"]].tolist() == ["*", 0.1]


def test_unknown_policy_means_unknown_limits_not_zero(tmp_path: Path) -> None:
    """Without a policy file, limits are NULL; with one that matches nobody, the limit is 0."""
    ledger = write_ledger(tmp_path / "l.csv", [{"email": "a@b.c", "cost": "1"}])
    use = analysis.budget_use(analysis.connect(analysis.Source("file", ledger, None, "")))
    assert use["limit_usd"].isna().all() and use["use_share"].isna().all()
    policy = tmp_path / "p.toml"
    policy.write_text('[budget]\n"@x.y" = { limit = 1, days = 7 }\n')
    use = analysis.budget_use(analysis.connect(analysis.Source("file", ledger, policy, "")))
    assert use.loc[0, ["rule", "limit_usd"]].tolist() == ["(none)", 0]


def test_money_is_summed_exactly(tmp_path: Path) -> None:
    """Sums run as DECIMAL: a million-fold tenth of a micro-dollar adds up exactly."""
    ledger = write_ledger(tmp_path / "l.csv", [
        {"email": "a@b.c", "cost": "0.0000001", "ts": datetime(2025, 6, 30, 0, 0, 0, n)}
        for n in range(1000)
    ])  # fmt: skip
    con = analysis.connect(analysis.Source("file", ledger, None, ""))
    assert con.execute("SELECT sum(cost) FROM requests").fetchall() == [(Decimal("0.0001"),)]
    assert analysis.summary(con)["cost_usd"][0] == pytest.approx(0.0001, abs=1e-15)


def test_limit_hits_and_suggestions_on_the_demo(con: duckdb.DuckDBPyConnection) -> None:
    """Refused users are listed; the over-used "*" rule is to be raised, the block kept."""
    hits = analysis.limit_hits(con)
    assert len(hits) > 10 and (hits["refused"] > 0).all()
    sugg = analysis.budget_suggestions(con).set_index("rule")
    assert sugg.loc["*", "action"] == "raise"
    assert sugg.loc["*", "suggested_limit"] > sugg.loc["*", "limit_usd"]
    assert (sugg.loc[sugg["limit_usd"] == 0, "action"] == "keep (blocked)").all()
    peaks = analysis.peak_use(con)
    assert peaks["hit_limit"].sum() == len(hits)


# ---------------------------------------------------------------- overview and models

def test_overview_totals_agree(con: duckdb.DuckDBPyConnection) -> None:
    """Spend by day, provider and user all add up to the summary's total."""
    total = analysis.summary(con)["cost_usd"][0]
    assert analysis.spend_by_day(con)["cost_usd"].sum() == pytest.approx(total)
    assert analysis.spend_by_provider(con)["cost_share"].sum() == pytest.approx(1)
    lorenz = analysis.spend_concentration(con)
    assert lorenz["cost_share"].iloc[-1] == pytest.approx(1)
    assert lorenz["cost_share"].is_monotonic_increasing
    assert len(analysis.top_users(con, limit=5)) == 5


def test_models_and_cost_sources(con: duckdb.DuckDBPyConnection) -> None:
    """Per-token price orders models sensibly; the day OpenRouter stopped reporting stands out."""
    costs = analysis.model_costs(con).set_index("model")
    per_1k = costs["usd_per_1k_tokens"]
    assert per_1k["anthropic/claude-opus-4"] > per_1k["gpt-4o"] > per_1k["gpt-4o-mini"]
    by_day = analysis.cost_sources_by_day(con).pivot_table(
        index="date", columns="cost_source", values="cost_usd", aggfunc="sum", fill_value=0
    )
    share = by_day["estimated"] / by_day.sum(axis=1)
    assert share.idxmax().date() == END - timedelta(days=5)
    streams = analysis.stream_outcomes(con)
    assert (streams["cut_share"] > 0).all() and (streams["cut_share"] < 0.2).all()
    outcomes = analysis.outcomes_by_provider(con)
    assert outcomes[["ok", "error", "aborted", "broken", "refused"]].sum(axis=1).eq(
        outcomes["requests"]
    ).all()


# ---------------------------------------------------------------- anomalies

def test_the_planted_anomalies_are_found(con: duckdb.DuckDBPyConnection) -> None:
    """Each anomaly query finds its planted case and little else."""
    spikes = analysis.user_hour_spikes(con)
    assert len(spikes) == 1
    assert spikes.loc[0, "origin"] == "https://free-gpt-chat.example.net"
    assert spikes.loc[0, "hour"] == datetime(2025, 6, 21, 2)
    hourly = analysis.user_hourly(con, spikes.loc[0, "email"])
    assert hourly["requests"].max() == spikes.loc[0, "requests"]

    odd = analysis.off_hours_users(con)
    assert "students.example.edu" in set(odd["domain"]) and len(odd) <= 3

    rare = analysis.rare_models(con)
    assert rare["model"].tolist() == ["anthropic/claude-opus-4"]

    bursts = analysis.failure_bursts(con)
    assert set(bursts["provider"]) == {"gemini"}
    assert {h.hour for h in bursts["hour"]} == {13, 14, 15}

    profile = analysis.hourly_profile(con)
    assert profile.groupby("domain")["share"].sum().round(9).eq(1).all()
    rates = analysis.failure_rates(con)
    assert rates["failure_rate"].between(0, 1).all()
