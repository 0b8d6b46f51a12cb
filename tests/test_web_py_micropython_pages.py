"""The playground, dashboard and admin modules under MicroPython itself (the pages' interpreter),
via Node: each pure module imports and gives the same answers as under CPython — MicroPython has
no datetime or csv, keeps no dict order, and parses a narrower grammar."""

from __future__ import annotations

import json
import subprocess

from tests.test_web_py_micropython import MPY, RUNNER, WEB_PY, node  # noqa: F401 - fixture
from tests.test_web_py_playground import _load

IMPORTS = ("import admin_view, catalog, charts, chat, codegen, dates, dialect, markup, money, "
           "picker, usage_view")
# One program, run by both interpreters; it prints one JSON line.
PROGRAM = """
import json
""" + IMPORTS + """

prices = {"openai": {"gpt-4o-mini": {"input": 0.15, "output": 0.6, "cached_input": 0.075},
                     "whisper-1": {"per_minute": 0.006}}}
listing = {"data": [{"id": "gpt-4o-mini"}, {"id": "whisper-1"}]}
router = {"data": [{"id": "a/b", "pricing": {"prompt": "0.00000015", "completion": "0.0000006"}},
                   {"id": "c/free", "pricing": {"prompt": "0", "completion": "0"}}]}
models = catalog.openai_models(listing, prices) + catalog.openrouter_models(router)
usage = {"prompt_tokens": 1000, "completion_tokens": 200,
         "prompt_tokens_details": {"cached_tokens": 400}}
cost = catalog.reply_cost(models[0], usage)
parser = chat.SSEParser()
reply = chat.Reply()
for piece in ['data: {"choices": [{"delta": {"content": "Hi "}}]}\\n', '\\ndata: {"choices": [',
              '{"delta": {"content": "there"}}]}\\n\\ndata: {"choices": [], "usage": {"prompt_tokens": 2}}',
              '\\n\\ndata: [DONE]\\n\\n']:
    for data in parser.feed(piece):
        reply.add(data)
claude_events = [
    {"type": "message_start", "message": {"usage": {"input_tokens": 7, "output_tokens": 1,
                                                    "cache_read_input_tokens": 3}}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "jour"}},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop"}]
claude_parser, claude = chat.SSEParser(), dialect.new_reply("anthropic")
for event in claude_events:
    for data in claude_parser.feed("event: " + event["type"] + "\\ndata: " + json.dumps(event) + "\\n\\n"):
        claude.add(data)
claude_body = dialect.request_body("anthropic", "claude-sonnet-4-5",
                                   [{"role": "system", "content": "S"}, {"role": "user", "content": "q"}],
                                   None, 30)
claude_models = catalog.anthropic_models(
    {"data": [{"id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5"}]},
    {"anthropic": {"claude-sonnet-4-5": {"input": 3.0, "output": 15.0, "cached_input": 0.3}}})
state = chat.load_state(chat.dump_state({"model": "m", "system": "S", "temperature": "",
                                         "max_tokens": "5", "messages": [
                                             {"role": "user", "content": "q", "meta": {}}]}))
body = chat.request_body("openai", "gpt-4o-mini", chat.request_messages(state, "next"), 0.5, 5)
u = {"days": 7, "limit": 1.0, "cost": 1.2, "usage": [
    {"date": "2026-03-05", "cost": 0.1}, {"date": "2026-03-06", "cost": 0.5},
    {"date": "2026-03-09", "cost": 0.6}]}
reqs = [{"date": "2026-03-09", "model": "m1", "cost": 0.6, "ts": "2026-03-09T01:02:03.4Z",
         "input_tokens": 3, "output_tokens": 4, "cost_source": "computed", "latency_ms": 5.5}]
users = [{"email": "b@x", "spend": 0.5, "limit": 1}, {"email": "a@x", "spend": 0.7, "limit": 1}]
out = {
    "keys": [m["key"] for m in models],
    "labels": [catalog.option_label(m) for m in models],
    "search": [m["key"] for m in catalog.search(models, "free")],
    "cost": [cost[0], cost[1], money.usd(cost[0])],
    "scaled": [money.scaled("1.5e-7"), money.scaled(1.2e-05), money.scaled("-1"),
               money.scaled(0.15, 6)],
    "money": [money.usd(money.pico(x)) for x in ("0.1", 0.1, 1.23456789, None, "1e-3", 3.6e-06)] +
             [money.usd(money.pico("0.9999982"), floor=True), money.per_million(75_000),
              money.budget_text({"limit": "0.10", "days": 7})],
    "reply": [reply.text, reply.usage, reply.done],
    "settings": list(chat.parse_settings("0.5", "10")),
    "body": json.loads(chat.body_json(body)),  # (key order is MicroPython's own)
    "advice": chat.advice(429, {"error": {"code": "insufficient_quota"}}, "m")["href"],
    "curl": codegen.curl("http://h", "/p", body),
    "python": codegen.python("http://h", "openai", body),
    "js": codegen.javascript("http://h", "/p", body),
    "dates": [dates.to_days("2026-03-10"), dates.from_days(20000), dates.window("2024-03-01", 2),
              dates.is_date("2026-02-30")],
    "frees": usage_view.frees_up(u, "2026-03-10"),
    "summary": money.spend_summary(u),
    "rows": usage_view.chart_rows(u, reqs, "2026-03-10"),
    "table": usage_view.request_row(reqs[0]),
    "spec": usage_view.chart_spec(u, reqs, "2026-03-10"),
    "sorted": [x["email"] for x in admin_view.sort_users(users, "spend", True)],
    "form": list(admin_view.cost_form("a@x.org", "2026-03-10", "0.25")),
    "groups": [[h, [m["key"] for m in ms]] for h, ms in picker.grouped(models)],
    "listbox": picker.listbox_html(models, models[0]["key"], models[1]["key"]),
    "default": picker.default_key(models, "nope"),
    "move": [picker.move([m["key"] for m in models], models[0]["key"], k)
             for k in ("ArrowDown", "ArrowUp", "End", "PageUp", "x")],
    "box": markup.code_box("s", [("a", "A <b>", "x < y & 'z'")]),
    "slug": markup.slug("openai:gpt-4o/Mini"),
    "legend": markup.legend(charts.legend_entries(usage_view.chart_rows(u, reqs, "2026-03-10"), "model")),
    "ranked": markup.ranked(admin_view.top_users(users)),
    "top": charts.top_n(charts.stacked_rows(None, [("d", "k" + str(i), i + 1) for i in range(12)],
                                            ["d"]), "model", "model", 3),
    "labels": charts.label_dates(dates.window("2026-03-10", 30), 5),
    "meta": chat.meta_parts({"model": "m", "usage": {"prompt_tokens": 2}, "cost": "$1.00",
                             "source": "computed", "stopped": True},
                            catalog.usage_tokens({"prompt_tokens": 2})),
    "overview": admin_view.overview(users, [{"date": "d", "key": "k", "cost": 0.5, "requests": 2}],
                                    [{"date": "d", "cost": 0.75}]),
    "moment": dates.moment("2026-03-09T01:02:03.4Z"),
    "claude": [claude.text, claude.usage, claude.finish, claude.done,
               json.loads(chat.body_json(claude_body)), dialect.headers("anthropic"),
               [m["key"] for m in claude_models],
               catalog.reply_cost(claude_models[0], claude.usage)],
    "claude_code": [codegen.curl("http://h", "/anthropic/v1/messages", claude_body, "anthropic"),
                    codegen.python("http://h", "anthropic", claude_body),
                    codegen.javascript("http://h", "/anthropic/v1/messages", claude_body, "anthropic")],
}
print(json.dumps(out))
"""


def _cpython_answers() -> dict:
    modules = {name: _load(name) for name in
               ("admin_view", "catalog", "charts", "chat", "codegen", "dates", "dialect", "markup",
                "money", "picker", "usage_view")}
    lines: list[str] = []
    program = PROGRAM.replace(IMPORTS, "").replace("print(", "lines.append(")
    exec(program, {**modules, "json": json, "lines": lines})  # our own program (one scope)
    return json.loads(lines[-1])


def test_pure_page_modules_agree_under_micropython(node: str) -> None:  # noqa: F811 - fixture
    """Every pure module of the three pages runs under MicroPython with the same results."""
    result = subprocess.run(
        [node, "--input-type=module", "-e", RUNNER, "runner", str(MPY), str(WEB_PY)],
        input=PROGRAM, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    micropython = json.loads(result.stdout.strip().splitlines()[-1])
    cpython = _cpython_answers()
    assert micropython == cpython
    assert cpython["cost"][2] == "$0.00024"
    assert cpython["scaled"] == [150_000, 12_000_000, None, 150_000]
    assert cpython["money"] == ["$0.10", "$0.10", "$1.2346", "$0.00", "$0.001", "$0.0000036",
                                "$0.9999", "$0.075", "$0.10 per user over 7 days"]
    assert cpython["reply"] == ["Hi there", {"prompt_tokens": 2}, True]
    text, usage, finish, done, body, headers, keys, cost = cpython["claude"]
    assert [text, finish, done] == ["Bonjour", "end_turn", True]
    assert usage == {"prompt_tokens": 10, "completion_tokens": 2,
                     "prompt_tokens_details": {"cached_tokens": 3}}
    assert body["system"] == "S" and body["max_tokens"] == 30
    assert headers == [["anthropic-version", "2023-06-01"]]
    assert keys == ["anthropic:claude-sonnet-4-5-20250929"]
    assert cost == [7 * 3_000_000 + 3 * 300_000 + 2 * 15_000_000, "computed"]
    assert cpython["frees"]["date"] == "2026-03-13"
    assert cpython["groups"] == [["OpenAI", ["openai:gpt-4o-mini"]], ["OpenRouter · a", ["openrouter:a/b"]],
                                 ["OpenRouter · c", ["openrouter:c/free"]]]
    assert cpython["slug"] == "openai-gpt-4o-mini"
    assert "&lt;b&gt;" in cpython["box"] and "x &lt; y &amp; &#39;z&#39;" in cpython["box"]
    assert len({row["model"] for row in cpython["top"]}) == 4  # 3 named + "9 more models"
    assert cpython["labels"][-1] == "2026-03-10" and len(cpython["labels"]) <= 5
