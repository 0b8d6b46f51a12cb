"""The scratchpad's Python under CPython: scratch.py (the page's logic), cellrun.py (how a cell
runs) and aipipe.py (the module students import) against the real relay app in front of the fake
providers — the same endpoints, budgets and ledger as any other client."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from types import ModuleType
from urllib.parse import unquote

import pytest
from starlette.testclient import TestClient

from tests.conftest import auth
from tests.test_web_py_micropython import MPY, RUNNER, WEB_PY
from tests.test_web_py_playground import _load
from tests.tools import need

scratch = _load("scratch")
cellrun = _load("cellrun")

PRICES = {"openai": {
    "gpt-4o-mini": {"input": 0.15, "output": 0.6},
    "gpt-4.1-nano": {"input": 0.1, "output": 0.4},
    "o1": {"input": 15.0, "output": 60.0},
    "whisper-1": {"per_minute": 0.006},
    "text-embedding-3-small": {"input": 0.02},
}}


# -- scratch.py ------------------------------------------------------------------------------
def test_every_example_is_valid_python_using_the_aipipe_contract() -> None:
    """Each starter example compiles, imports aipipe and calls only what the module offers;
    the evaluation example names the two models it was given, quoted safely."""
    assert scratch.example_ids() == ["one-call", "loop", "stream", "evaluate"]
    for key in scratch.example_ids():
        code = scratch.example(key, 'we"ird\\model', "gpt-4o-mini")
        compile(code, key, "exec")
        assert code.startswith("import aipipe\n")
    evaluate = scratch.example("evaluate", "gpt-4.1-nano", "gpt-4o-mini")
    assert 'MODELS = ["gpt-4.1-nano", "gpt-4o-mini"]' in evaluate
    assert 'f"{model}: {score}/{len(QUESTIONS)} right"' in evaluate
    assert 'MODELS = ["m", "m"]' in scratch.example("evaluate", "m")  # one model: compare it to itself
    assert "aipipe.stream(" in scratch.example("stream")
    assert scratch.example("nope") is None


def test_default_models_demo_then_preferred_cheap_then_cheapest() -> None:
    """Keyless --dev: the demo model. Otherwise a preferred cheap chat model the relay prices,
    then the next; never an embedding, audio or unpriced model."""
    assert scratch.default_models({"demo_model": "aipipe-demo"}, PRICES) == ["aipipe-demo"] * 2
    assert scratch.default_models({}, PRICES) == ["gpt-4.1-nano", "gpt-4o-mini"]
    assert scratch.chat_models(PRICES) == ["gpt-4.1-nano", "gpt-4o-mini", "o1"]
    odd = {"openai": {"zeta": {"input": 2, "output": 2}, "alpha": {"input": 1, "output": 1}}}
    assert scratch.default_models({}, odd) == ["alpha", "zeta"]
    assert scratch.default_models({}, {"openai": {"solo": {"input": 1, "output": 1}}}) == \
        ["solo", "solo"]
    assert scratch.default_models(None, None) == ["gpt-4.1-nano", "gpt-4.1-nano"]


def test_code_comes_from_the_link_then_storage_then_the_first_example() -> None:
    """The playground's #code= link wins over the code kept from last time, which wins over
    the first example."""
    assert scratch.code_param("#code=print%281%29") == "print%281%29"
    assert scratch.code_param("#x=1&code=a") == "a"
    assert scratch.code_param("code=a") == "a"
    assert scratch.code_param("#aipipe_token=t") is None
    assert scratch.code_param(None) is None
    assert scratch.initial_code("linked", "saved") == "linked"
    assert scratch.initial_code(None, "saved") == "saved"
    assert scratch.initial_code("", "") == scratch.example("one-call")


def test_result_and_status_lines() -> None:
    """The words under the output: how a run ended, its calls and their exact cost."""
    assert scratch.run_summary({"ok": True, "seconds": 1.26, "calls": 2, "cost": "0.000142",
                                "unknown": 0}) == "Done in 1.3 s · 2 calls · $0.00014"
    assert scratch.run_summary({"ok": True, "seconds": 0.04, "calls": 0}) == \
        "Done in 0.0 s · no model calls"
    failed = scratch.run_summary({"ok": False, "error": "ZeroDivisionError: division by zero",
                                  "calls": 1, "cost": "0.0000051", "unknown": 1})
    assert failed == ("Failed: ZeroDivisionError: division by zero · 1 call · $0.0000051"
                      " + 1 cut short (the relay records an estimate)")
    assert scratch.ready_text({"python": "3.14.2", "pyodide": "314.0.7", "ms": 2340,
                               "streaming": "live"}) == \
        "Python 3.14.2 ready (Pyodide 314.0.7, started in 2.3 s)"
    assert "streams arrive whole" in scratch.ready_text({"streaming": "whole"})
    assert scratch.loading_text("Loading Python (Pyodide)…", 3.04) == \
        "Loading Python (Pyodide)… 3.0 s"
    assert scratch.stopped_text(12.0).startswith("Stopped after 12.0 s.")


# -- cellrun.py ------------------------------------------------------------------------------
def run_cell(code: str) -> tuple[dict, list[tuple[str, str]]]:
    written: list[tuple[str, str]] = []
    outcome = asyncio.run(cellrun.run(code, lambda stream, text: written.append((stream, text))))
    return outcome, written


def text_of(written: list[tuple[str, str]], stream: str | None = None) -> str:
    return "".join(t for s, t in written if stream in (None, s))


def test_a_cell_prints_and_shows_its_last_expression_like_a_notebook() -> None:
    """print() goes to the page; a last bare expression's repr is shown (None is not); top-level
    await works; sys.stdout is the real one again afterwards."""
    before = sys.stdout
    outcome, written = run_cell("import asyncio\nprint('hi', 1)\nawait asyncio.sleep(0)\n"
                                "x = {'a': 1}\nx")
    assert outcome["ok"] and outcome["error"] is None and outcome["seconds"] >= 0
    assert text_of(written, "stdout") == "hi 1\n{'a': 1}\n"
    assert text_of(run_cell("print('only')\nNone")[1]) == "only\n"
    assert sys.stdout is before


def test_an_exception_shows_the_cells_traceback_and_not_the_runners() -> None:
    """A failing cell prints a traceback with its own lines (file "<cell>", the source shown),
    none of cellrun's frames, and reports the one-line error; output before it is kept."""
    outcome, written = run_cell("print('before')\ndef f():\n    return 1 / 0\nf()\n")
    assert not outcome["ok"]
    assert outcome["error"] == "ZeroDivisionError: division by zero"
    assert text_of(written, "stdout") == "before\n"
    trace = text_of(written, "stderr")
    assert trace.startswith("Traceback (most recent call last):\n")
    assert 'File "<cell>", line 4, in <module>' in trace
    assert 'File "<cell>", line 3, in f\n    return 1 / 0' in trace
    assert "cellrun" not in trace and trace.endswith("ZeroDivisionError: division by zero\n")


def test_syntax_errors_and_exits() -> None:
    """A syntax error points at the cell's line without a traceback; sys.exit() ends a cell
    quietly, sys.exit(3) is a failure; each run starts from a fresh namespace."""
    outcome, written = run_cell("x = 1\nprint(x +)\n")
    assert not outcome["ok"] and outcome["error"].startswith("SyntaxError")
    trace = text_of(written, "stderr")
    assert 'File "<cell>", line 2' in trace and "Traceback" not in trace
    assert run_cell("import sys\nprint('a')\nsys.exit()\nprint('b')")[0]["ok"]
    code_3 = run_cell("import sys\nsys.exit(3)")[0]
    assert not code_3["ok"] and code_3["error"] == "SystemExit: 3"
    run_cell("leftover = 1")
    outcome, written = run_cell("leftover")
    assert outcome["error"] == "NameError: name 'leftover' is not defined"


def test_a_flood_of_prints_arrives_in_order_in_few_messages() -> None:
    """100,000 prints reach the page complete and in order, coalesced into far fewer messages
    (one postMessage each in the browser), stdout and stderr interleaved as written."""
    code = "import sys\nfor i in range(100000):\n    print(i)\nprint('err', file=sys.stderr)\n"
    outcome, written = run_cell(code + "print('end')")
    assert outcome["ok"]
    assert text_of(written, "stdout") == "".join(f"{i}\n" for i in range(100000)) + "end\n"
    assert len(written) < 2000
    assert [s for s, _t in written][-2:] == ["stderr", "stdout"]


# -- aipipe.py against the relay ----------------------------------------------------------------
class ClientHTTP:
    """aipipe's transport over the relay app's TestClient; streams are handed over in 7-character
    pieces so that events split across reads are exercised."""

    def __init__(self, client: TestClient):
        self.client = client

    def request(self, method: str, url: str, headers: dict, body: str | None):
        response = self.client.request(method, url, headers=headers, content=body)
        return response.status_code, response.headers, response.text

    def stream(self, method: str, url: str, headers: dict, body: str | None):
        status, found, text = self.request(method, url, headers, body)
        return status, found, iter([text[i:i + 7] for i in range(0, len(text), 7)])


@pytest.fixture
def aipipe(client: TestClient, token: Callable[[str], str],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A fresh aipipe module configured as the scratchpad does, for student@example.com; a
    cell's `import aipipe` gets this one, as in the worker."""
    module = _load("aipipe")
    module.configure(token=token("student@example.com"), base_url="http://testserver/",
                     model="gpt-4o-mini", http=ClientHTTP(client))
    monkeypatch.setitem(sys.modules, "aipipe", module)
    yield module


def spend(client: TestClient, tok: str) -> Decimal:
    return Decimal(str(client.get("/usage", headers=auth(tok)).json()["cost"]))


def test_chat_and_stream_are_budgeted_and_their_cost_is_what_usage_records(
        aipipe: ModuleType, client: TestClient, upstream) -> None:
    """chat() returns the reply text and stream() yields it in pieces; each call's cost (the
    x-aipipe-cost header, the stream's `: aipipe` comment) is recorded, and together they are
    exactly the change in /usage."""
    before = spend(client, aipipe.token)
    assert aipipe.chat("Say hi") == "Hello from the fake upstream"
    pieces = list(aipipe.stream("Say hi again", temperature=0.5))
    assert pieces == ["Hello ", "from ", "the ", "fake ", "upstream"]
    total, count, unknown = aipipe.spent()
    assert (count, unknown) == (2, 0) and total > 0
    assert [(c["model"], c["source"]) for c in aipipe.calls] == [("gpt-4o-mini", "computed")] * 2
    assert spend(client, aipipe.token) - before == total
    assert Decimal(str(aipipe.usage()["cost"])) == before + total
    assert aipipe.spent(since=1)[1] == 1


def sent_bodies(upstream) -> list[tuple[str, dict]]:
    return [(r["path"], json.loads(r["body"])) for r in upstream.state.received
            if r["path"].endswith("/chat/completions")]


def test_requests_carry_the_prompt_system_and_params_and_route_by_model(
        aipipe: ModuleType, upstream) -> None:
    """A string prompt becomes one user message, system= a system message before it, other
    keywords go into the body as given; a list of messages is sent as it is; a model with a
    "/" goes to OpenRouter, whose reported cost is what aipipe records."""
    aipipe.chat("Q", system="Be brief", temperature=0, max_tokens=5)
    aipipe.chat([{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"},
                 {"role": "user", "content": "C"}], model="openai/gpt-4.1-nano")
    (path1, body1), (path2, body2) = sent_bodies(upstream)
    assert path1.startswith("/openai/") and path2.startswith("/openrouter/")
    assert body1 == {"model": "gpt-4o-mini", "temperature": 0, "max_tokens": 5, "messages": [
        {"role": "system", "content": "Be brief"}, {"role": "user", "content": "Q"}]}
    assert [m["content"] for m in body2["messages"]] == ["A", "B", "C"]
    assert aipipe.calls[-1]["source"] == "reported"
    with pytest.raises(TypeError):
        aipipe.chat(42)


def test_models_lists_what_the_relay_offers(aipipe: ModuleType) -> None:
    """models() is the relay's /openai/v1/models (or OpenRouter's), sorted names; free."""
    assert aipipe.models() == sorted(["gpt-4o-mini", "gpt-4.1-nano", "o4-mini",
                                      "text-embedding-3-small", "whisper-1"])
    assert "openai/gpt-4o-mini" in aipipe.models("openrouter")
    assert aipipe.calls == []


def test_a_stream_left_early_is_counted_as_cut_short(aipipe: ModuleType) -> None:
    """Breaking out of stream() closes the request; the call is listed with an unknown cost
    (the relay records its estimate), and a later run's summary says so."""
    for piece in aipipe.stream("Tell me a long story"):
        assert piece
        break
    assert aipipe.calls == [{"model": "gpt-4o-mini", "cost": None, "source": "cut short"}]
    assert aipipe.spent() == (Decimal(0), 1, 1)


def test_refusals_raise_with_the_relays_message(aipipe: ModuleType, client: TestClient,
                                                token: Callable[[str], str]) -> None:
    """A bad token, a spent budget and an unpriced model each raise AIPipeError with the HTTP
    status and the relay's own message, for chat and stream alike; nothing is recorded."""
    aipipe.configure(token="not-a-token")
    with pytest.raises(aipipe.AIPipeError) as bad:
        aipipe.chat("hi")
    assert bad.value.status == 401 and "token" in bad.value.message.lower()
    aipipe.configure(token=token("blocked@example.com"))
    with pytest.raises(aipipe.AIPipeError) as spent_up:
        list(aipipe.stream("hi"))
    assert spent_up.value.status == 429 and str(spent_up.value).startswith("HTTP 429: ")
    aipipe.configure(token=token("student@example.com"))
    with pytest.raises(aipipe.AIPipeError) as unpriced:
        aipipe.chat("hi", model="gpt-unpriced-9")
    assert unpriced.value.status == 400 and unpriced.value.data["error"]["code"]
    assert aipipe.calls == []


def test_an_unconfigured_module_says_what_to_do() -> None:
    """Outside the scratchpad aipipe needs configure(); calling it before says so."""
    module = _load("aipipe")
    with pytest.raises(module.AIPipeError, match="configure"):
        module.usage()
    module.configure(base_url="http://x", http=object())
    with pytest.raises(module.AIPipeError, match="no model"):
        module.chat("hi")


# -- the playground's link, and MicroPython (the page's interpreter) ---------------------------
def test_the_playgrounds_request_becomes_a_scratchpad_cell_that_runs(
        aipipe: ModuleType, upstream) -> None:
    """"Show code" links to /scratchpad with the same request as aipipe code (percent-encoded
    in the fragment); run as a cell, it sends the same model, messages and settings."""
    codegen, chat = _load("codegen"), _load("chat")
    messages = [{"role": "system", "content": 'Say "yes" — or no'},
                {"role": "user", "content": "Well?"}]
    body = chat.request_body("openai", "gpt-4o-mini", messages, 0.2, 30)
    code = codegen.scratchpad(body)
    link = codegen.scratchpad_link(body)
    assert link.startswith("/scratchpad#code=import%20aipipe%0A")
    assert unquote(scratch.code_param(link.partition("#")[2])) == code
    outcome, written = run_cell(code)
    assert outcome["ok"], written
    assert text_of(written) == "Hello from the fake upstream\n"
    (_path, sent), = sent_bodies(upstream)
    assert sent["messages"] == messages
    assert (sent["model"], sent["temperature"], sent["max_completion_tokens"], sent["stream"]) \
        == ("gpt-4o-mini", 0.2, 30, True)


MICRO_PROGRAM = """
import json
import codegen, scratch
prices = {"openai": {"gpt-4o-mini": {"input": 0.15, "output": 0.6},
                     "gpt-4.1-nano": {"input": 0.1, "output": 0.4}, "whisper-1": {"per_minute": 1}}}
body = [("model", "gpt-4o-mini"), ("messages", [{"role": "user", "content": "a 'b' \\"c\\"?"}]),
        ("temperature", 0.5), ("stream", True)]
out = {
    "examples": [scratch.example(k, "a", "b") for k in scratch.example_ids()],
    "models": [scratch.default_models({}, prices), scratch.default_models({"demo_model": "d"}, {})],
    "param": [scratch.code_param("#x=1&code=a%20b"), scratch.code_param("")],
    "initial": scratch.initial_code(None, None, "m"),
    "summary": [scratch.run_summary({"ok": True, "seconds": 2.25, "calls": 3, "cost": "0.00012",
                                     "unknown": 1}),
                scratch.run_summary({"ok": False, "error": "E: x", "calls": 0})],
    "ready": scratch.ready_text({"python": "3.14", "pyodide": "314", "ms": 999,
                                 "streaming": "whole"}),
    "link": codegen.scratchpad_link(body),
}
print(json.dumps(out))
"""


def test_the_page_logic_agrees_under_micropython() -> None:
    """scratch.py and the playground's new link run under MicroPython (the page's interpreter)
    with the same answers as under CPython."""
    node = shutil.which("node")
    need(bool(node) and MPY.is_file(), "node and web/node_modules (bash scripts/setup.sh)")
    result = subprocess.run([node, "--input-type=module", "-e", RUNNER, "runner", str(MPY),
                             str(WEB_PY)], input=MICRO_PROGRAM, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    micropython = json.loads(result.stdout.strip().splitlines()[-1])
    lines: list[str] = []
    program = MICRO_PROGRAM.replace("import codegen, scratch", "").replace("print(", "lines.append(")
    exec(program, {"json": json, "codegen": _load("codegen"), "scratch": scratch,
                   "lines": lines})
    assert micropython == json.loads(lines[-1])
    assert micropython["models"] == [["gpt-4.1-nano", "gpt-4o-mini"], ["d", "d"]]
    assert micropython["link"].endswith("%0Aprint%28%29")


def test_claude_models_go_to_the_messages_api(aipipe: ModuleType, client: TestClient,
                                              upstream) -> None:
    """A claude-... model goes to /anthropic/v1/messages with the version header: system= at
    the top level, max_tokens filled in (Anthropic requires it); chat() reads the text blocks,
    stream() the text deltas; both costs are recorded and match /usage; models("anthropic")
    lists Anthropic's models."""
    before = spend(client, aipipe.token)
    assert aipipe.chat("Say hi", model="claude-sonnet-4-5", system="Be brief") == \
        "Hello from the fake upstream"
    pieces = list(aipipe.stream([{"role": "user", "content": "Again"}],
                                model="claude-haiku-4-5", max_tokens=100))
    assert pieces == ["Hello ", "from ", "the ", "fake ", "upstream"]
    sent = [r for r in upstream.state.received if r["path"].endswith("/v1/messages")]
    assert [r["headers"]["anthropic-version"] for r in sent] == ["2023-06-01"] * 2
    first, second = (json.loads(r["body"]) for r in sent)
    assert first == {"model": "claude-sonnet-4-5", "max_tokens": 4096, "system": "Be brief",
                     "messages": [{"role": "user", "content": "Say hi"}]}
    assert second["max_tokens"] == 100 and second["stream"] is True and "system" not in second
    total, count, unknown = aipipe.spent()
    assert (count, unknown) == (2, 0) and total > 0
    assert [c["source"] for c in aipipe.calls] == ["computed", "computed"]
    assert spend(client, aipipe.token) - before == total
    assert "claude-sonnet-4-5-20250929" in aipipe.models("anthropic")


def test_a_claude_error_event_mid_stream_raises(aipipe: ModuleType, client: TestClient) -> None:
    """Anthropic's `error` event (overloaded) mid-stream raises AIPipeError with its message,
    after the text that came before it."""
    aipipe.configure(http=Behaviour(ClientHTTP(client), "streamerror"))
    got = []
    with pytest.raises(aipipe.AIPipeError) as error:
        for piece in aipipe.stream("Hi", model="claude-sonnet-4-5"):
            got.append(piece)
    assert error.value.message == "Overloaded" and "".join(got) == "Hello from the fake upstream"


class Behaviour:
    """A transport that asks the fake upstream (through the relay) for a behaviour."""

    def __init__(self, inner: ClientHTTP, behaviour: str):
        self.inner, self.behaviour = inner, behaviour

    def request(self, method: str, url: str, headers: dict, body: str | None):
        return self.inner.request(method, url, {**headers, "x-fake": self.behaviour}, body)

    def stream(self, method: str, url: str, headers: dict, body: str | None):
        return self.inner.stream(method, url, {**headers, "x-fake": self.behaviour}, body)
