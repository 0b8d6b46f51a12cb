"""Claude Code itself (the npm package `@anthropic-ai/claude-code` with its native binary, installed
by scripts/setup.sh into tests/clients/node), configured as its docs tell users to configure an
LLM gateway: `ANTHROPIC_BASE_URL=<relay>/anthropic` and `ANTHROPIC_AUTH_TOKEN=<AI Pipe token>`,
run as `claude -p "Say hello" --output-format json` with a fresh HOME and its non-essential
traffic off. Every run is under strace: it may connect to nothing but 127.0.0.1."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from relay.costing.cost import affordable_output, estimate_tokens
from relay.costing.pricing import PriceTable
from relay.costing.usage import request_text_chars
from relay.forward.call import tool_chars
from tests.clients.conftest import REPLY, SMALL_BUDGET, Stack, User

CLAUDE = Path(__file__).parent / "node" / "node_modules" / ".bin" / "claude"
QUIET = {  # what Claude Code's docs name for a machine with no internet
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
}
_ADDRESS = re.compile(r'sa_family=AF_INET6?, .*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")')


def claude(base_url: str, token: str, home: Path) -> dict[str, Any]:
    """Run `claude -p "Say hello" --output-format json` under strace; its JSON result. Fails if
    it connected anywhere but loopback."""
    if not CLAUDE.exists():
        pytest.fail("Claude Code is not installed: run `bash scripts/setup.sh`")
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is missing: run `bash scripts/setup.sh --browser`")
    home.mkdir(exist_ok=True)
    trace = home / "strace.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "ANTHROPIC_BASE_URL": base_url,
           "ANTHROPIC_AUTH_TOKEN": token, **QUIET}
    done = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace),
         str(CLAUDE), "-p", "Say hello", "--output-format", "json"],
        env=env, cwd=home, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    reached = [a or b for a, b in _ADDRESS.findall(trace.read_text())]
    assert reached, "strace saw no connection at all"
    assert set(reached) <= {"127.0.0.1", "::1", "::ffff:127.0.0.1"}, reached
    return json.loads(done.stdout)


def anthropic_base(stack: Stack) -> str:
    return stack.env["AIPIPE_ANTHROPIC_BASE"]  # the fake Anthropic itself


def test_claude_code_sends_a_bearer_token_and_its_anthropic_headers(user: User,
                                                                    tmp_path: Path) -> None:
    """Against the fake Anthropic directly: what Claude Code sends a gateway — the token as
    `Authorization: Bearer` (no `x-api-key`), `anthropic-version`, its `anthropic-beta` list,
    `x-app: cli`, a streamed Messages request with max_tokens and adaptive thinking."""
    key = user.stack.env["ANTHROPIC_API_KEY"]
    result = claude(anthropic_base(user.stack), key, tmp_path / "home")
    assert result["is_error"] is False and result["result"] == REPLY
    [sent] = [r for r in user.stack.fake.state.received if r["method"] == "POST"]
    assert (sent["path"], sent["query"]) == ("/anthropic/v1/messages", "beta=true")
    headers = sent["headers"]
    assert headers["authorization"] == f"Bearer {key}" and "x-api-key" not in headers
    assert headers["anthropic-version"] == "2023-06-01" and headers["x-app"] == "cli"
    assert "claude-code-20250219" in headers["anthropic-beta"].split(",")
    body = json.loads(sent["body"])
    assert body["stream"] is True and isinstance(body["max_tokens"], int)
    assert body["thinking"]["type"] == "adaptive" and body["tools"]


def test_claude_code_works_through_the_relay_on_the_users_budget(user: User,
                                                                 tmp_path: Path) -> None:
    """Through AI Pipe: the answer arrives; the provider got the operator's key and Claude
    Code's own headers; the recorded cost is the usage billed at the relay's price — the very
    cost Claude Code itself reports for the call."""
    result = claude(f"{user.stack.url}/anthropic", user.token, tmp_path / "home")
    assert result["is_error"] is False and result["result"] == REPLY
    [sent] = user.stack.fake.state.received
    headers = sent["headers"]
    assert headers["x-api-key"] == user.stack.env["ANTHROPIC_API_KEY"]
    assert "authorization" not in headers and user.token not in json.dumps(headers)
    assert "claude-code-20250219" in headers["anthropic-beta"] and headers["x-app"] == "cli"
    [row] = user.rows(1)
    billed = user.stack.fake.state.billed[-1]
    model = json.loads(sent["body"])["model"]
    price = user.stack.prices("anthropic", model)
    tokens_in, tokens_out = billed["usage"]["input_tokens"], billed["usage"]["output_tokens"]
    cost = (Decimal(str(price["input"])) * tokens_in
            + Decimal(str(price["output"])) * tokens_out) / 1_000_000
    assert (row["provider"], row["model"], row["outcome"], row["streamed"]) == (
        "anthropic", model, "ok", True)
    assert (row["input_tokens"], row["output_tokens"], row["cost_source"]) == (
        tokens_in, tokens_out, "computed")
    assert Decimal(str(row["cost"])) == cost.quantize(Decimal("1e-10")) > 0
    # What Claude Code says it spent, by its own price list (a float, so to a billionth).
    assert round(Decimal(str(result["total_cost_usd"])), 9) == round(cost, 9)


def test_a_small_budget_gets_an_answer_with_max_tokens_lowered(stack: Stack,
                                                               tmp_path: Path) -> None:
    """A user with $0.50 cannot pay for the tens of thousands of output tokens Claude Code asks
    for: the relay lowers max_tokens to what $0.50 pays after the prompt (its tools included),
    and the answer still arrives."""
    stack.fake.state.reset()
    small = stack.user("small.example")
    result = claude(f"{stack.url}/anthropic", small.token, tmp_path / "home")
    assert result["is_error"] is False and result["result"] == REPLY
    [sent] = stack.fake.state.received
    body = json.loads(sent["body"])
    price = PriceTable.load().lookup("anthropic", body["model"])
    assert price is not None
    prompt = estimate_tokens(request_text_chars(body) + tool_chars(body))
    cap = affordable_output(price, prompt, 1, Decimal(SMALL_BUDGET))
    assert cap is not None and body["max_tokens"] == cap < 64_000
    [row] = small.rows(1)
    assert row["outcome"] == "ok" and 0 < row["cost"] < float(SMALL_BUDGET)
