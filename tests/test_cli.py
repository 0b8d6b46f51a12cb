"""The command line, as an operator uses it: a real `aipipe serve` process and the other commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx
import pytest

from testkit.relay_process import clean_env, serve_relay


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(AIPIPE_DATA_DIR=str(tmp_path / "data"))


@pytest.fixture
def dev_server(env: dict[str, str], tmp_path: Path):
    with serve_relay(tmp_path, env, "--dev") as url:
        yield url


def test_dev_server_answers_the_demo_model_with_nothing_configured(
    dev_server, env, tmp_path
) -> None:
    """`aipipe serve --dev` with no keys: a token from the CLI and a chat call to the demo model work."""
    token = run(["token", "--dev", "me@example.com"], env, tmp_path).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.post(
        f"{dev_server}/openai/v1/chat/completions",
        headers=headers,
        timeout=30,
        json={"model": "aipipe-demo", "messages": [{"role": "user", "content": "Hello"}]},
    )
    assert r.status_code == 200, r.text
    assert "[AI Pipe demo model]" in r.json()["choices"][0]["message"]["content"]
    assert float(r.headers["x-aipipe-cost"]) > 0
    other = httpx.post(
        f"{dev_server}/openai/v1/chat/completions",
        headers=headers,
        timeout=30,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]},
    )
    assert other.status_code == 404 and "OPENAI_API_KEY" in other.text
    usage = httpx.get(f"{dev_server}/usage", headers=headers).json()
    assert usage["cost"] > 0


def test_export_and_usage_while_the_relay_runs(dev_server, env, tmp_path) -> None:
    """The relay holds the DuckDB file; `export` and `usage` go through its API instead."""
    token = run(["token", "--dev", "me@example.com"], env, tmp_path).stdout.strip()
    httpx.post(
        f"{dev_server}/openai/v1/chat/completions",
        headers={"Authorization": f"Bearer {token}"},
        json={"model": "aipipe-demo", "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    )
    out = tmp_path / "ledger.parquet"
    result = run(["export", "--dev", "--out", str(out)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert duckdb.sql(f"SELECT email, model FROM '{out}'").fetchall() == [
        ("me@example.com", "aipipe-demo")
    ]
    usage = run(["usage", "--dev"], env, tmp_path)
    assert usage.returncode == 0, usage.stderr
    assert "me@example.com" in usage.stdout


def test_a_second_relay_on_the_same_data_refuses_and_leaves_the_first_alone(
    dev_server, env, tmp_path
) -> None:
    """Two relays on one file would each keep their own spend: the second stops with a message
    naming the first, and the first's record (what `export` and `usage` use) stays."""
    record = json.loads((tmp_path / "data" / "relay.json").read_text())
    assert record["url"] == dev_server
    second = run(["serve", "--dev", "--port", "1"], env, tmp_path)  # never gets to bind
    assert second.returncode == 1
    assert "in use by another relay" in second.stderr and dev_server in second.stderr
    assert json.loads((tmp_path / "data" / "relay.json").read_text()) == record
    result = run(["usage", "--dev"], env, tmp_path)
    assert result.returncode == 0, result.stderr


def test_export_without_a_running_relay(env, tmp_path) -> None:
    """With no relay running, export opens the file itself (CSV by extension)."""
    env = {**env, "AIPIPE_SECRET": "s" * 40}
    out = tmp_path / "l.csv"
    result = run(["export", "--out", str(out)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("id,ts,date,email")
    bad = run(["export", "--out", str(tmp_path / "l.xlsx")], env, tmp_path)
    assert bad.returncode == 2 and ".parquet or .csv" in bad.stderr


def test_missing_secret_and_bad_policy_stop_with_a_message(env, tmp_path) -> None:
    """Without AIPIPE_SECRET, or with a broken policy file, commands exit 2 naming the problem."""
    result = run(["token", "a@b.co"], env, tmp_path)
    assert result.returncode == 2 and "AIPIPE_SECRET" in result.stderr
    policy = tmp_path / "aipipe.toml"
    policy.write_text('[budget]\n"*" = { limit = "lots" }\n')
    result = run(["token", "a@b.co"], {**env, "AIPIPE_SECRET": "s" * 40}, tmp_path)
    assert result.returncode == 2
    assert str(policy) in result.stderr and "limit" in result.stderr


def test_token_command_prints_a_verifiable_token(env, tmp_path) -> None:
    """`aipipe token EMAIL` prints a JWT for that email."""
    import jwt

    secret = "k" * 40
    result = run(["token", "Op@Example.com"], {**env, "AIPIPE_SECRET": secret}, tmp_path)
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["email"] == "op@example.com"
    assert set(claims) == {"email", "iat"}  # no role: an ordinary user's token
