"""Break each budget and security rule on purpose, one at a time, and check its tests catch it.

    .venv/bin/python scripts/rule_breaks.py            # every break (a few minutes)
    .venv/bin/python scripts/rule_breaks.py 3 7        # only breaks 3 and 7

The pairs are listed in docs/testing.md.
Each break edits one file of the working tree, runs the tests named for it (they must FAIL),
and puts the file back, whatever happens. Exit status 1 if any break went unnoticed.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORST = "tests/test_worst_case.py"
CONC = "tests/test_budget_concurrency.py"
ANTH = "tests/test_anthropic_route.py"
ANTH_BUDGET = "tests/test_anthropic_budget.py"


@dataclass(frozen=True)
class Break:
    rule: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments: node ids, or a file then "-k" and an expression
    count: int = 1  # how many times `old` appears (all are replaced)


BREAKS = (
    # -- issue 13 ------------------------------------------------------------------------------
    Break("1. a call naming no maximum is sent a cap", "relay/forward/admission.py",
          "(asked.requested is None or cap < asked.requested)",
          "(asked.requested is not None and cap < asked.requested)",
          (f"{WORST}::test_a_call_naming_no_maximum_is_capped_to_what_the_budget_pays",
           f"{CONC}::test_thirty_parallel_calls_without_a_maximum_cannot_outrun_the_budget",
           "tests/test_admission_property.py")),
    Break("1. the model's largest reply comes from the price data", "relay/forward/admission.py",
          "requested or spec.default or price.output_ceiling", "requested or spec.default or 4096",
          (f"{WORST}::test_a_call_naming_no_maximum_gets_the_models_own_maximum",)),
    Break("2. OpenRouter models the list does not price are bounded by its dearest",
          "relay/providers/openrouter_prices.py",
          "self.prices.get(model.lower()) or self.dearest", "self.prices.get(model.lower())",
          (WORST, "-k", "missing_from_the_list or without_cost")),
    Break("2. tokens without a cost are charged tokens x price",
          "relay/forward/accounting.py",
          "    if usage is not None:\n        computed = compute_cost(price, usage)",
          "    if usage is not None and usage.reported_cost is not None:\n"
          "        computed = compute_cost(price, usage)",
          (f"{WORST}::test_openrouter_usage_without_cost_is_charged_tokens_times_the_bound",),
          count=2),
    Break("3. Responses background: true is refused", "relay/providers/registry.py",
          '{"responses": ("background",)}', "{}",
          (f"{WORST}::test_background_responses_are_refused",)),
    Break("4. Gemini's snake_case limits are read", "relay/providers/registry.py",
          '("maxOutputTokens", "max_output_tokens")', '("maxOutputTokens",)',
          (f"{WORST}::test_gemini_snake_case_limits_are_read_and_capped",)),
    Break("5. dev sign-in: loopback Host only", "relay/routes/auth.py",
          'if not _loopback_name(request.headers.get("host", "")):', "if False:",
          ("tests/test_dev_login.py::test_dns_rebinding_is_refused",)),
    Break("5. dev sign-in: JSON only", "relay/routes/auth.py",
          '.lower() != "application/json":', '.lower() == "never":',
          ("tests/test_dev_login.py::test_a_cross_site_form_cannot_sign_in",)),
    Break("5. dev sign-in: no foreign Origin", "relay/routes/auth.py",
          "if origin is not None and not", "if False and not",
          ("tests/test_dev_login.py::test_another_sites_origin_is_refused",)),
    Break("5. dev sign-in: no CORS grant", "relay/edge.py",
          'NO_CORS = frozenset({"/dev-login"})', "NO_CORS = frozenset()",
          ("tests/test_dev_login.py::test_no_cors_grant_on_dev_login",)),
    Break("6. /proxy judges NAT64 by the IPv4 it wraps", "relay/routes/webproxy.py",
          "if ip in _NAT64 else None", "if False else None",
          ("tests/test_webproxy.py", "-k", "is_public or wrapped_private")),
    Break("6. /proxy refuses IPv4-compatible and site-local", "relay/routes/webproxy.py",
          '("::/96", "64:ff9b:1::/48", "fec0::/10")', '("64:ff9b:1::/48",)',
          ("tests/test_webproxy.py", "-k", "is_public or wrapped_private")),
    Break("7. account headers are not forwarded", "relay/forward/passthrough.py",
          '"openai-organization", "openai-project", "x-goog-user-project",', "",
          ("tests/test_proxy.py", "-k", "bill_or_identify")),
    Break("7. account headers are not passed back", "relay/forward/passthrough.py",
          '"set-cookie", "openai-organization", "openai-project"]', '"set-cookie"]',
          ("tests/test_proxy.py::test_provider_account_headers_are_not_passed_back",)),
    Break("8. a key split across chunks is masked", "relay/forward/passthrough.py",
          "keep = self._partial_key(data)", "keep = 0",
          ("tests/test_proxy.py", "-k", "split_anywhere")),
    Break("8. streamed answers are masked", "relay/forward/answers.py",
          "chunk = masker.feed(chunk)", "masker.feed(chunk)",
          ("tests/test_faults.py::test_key_masking_covers_text_errors_and_stream_events",)),
    Break("9. CSV cells never run as formulas", "relay/store/duckdb_ledger.py",
          'if fmt == "parquet" else _CSV_COLUMNS', 'if fmt else _CSV_COLUMNS',
          ("tests/test_admin.py", "-k", "formulas")),
    Break("10. the login page POSTs the Google credential", "web/py/login_page.py",
          'exchange("/token", body={"credential": str(response.credential)})',
          'exchange("/token?credential=" + handoff.quote(str(response.credential)))',
          ("tests/e2e/test_login.py::test_google_sign_in_gives_a_working_token",)),
    Break("11. the CLI's operator token lives 300 s", "relay/auth/tokens.py",
          "    elif settings.token_days:", "    if settings.token_days:",
          ("tests/test_tokens.py::test_operator_pass_lives_five_minutes_whatever_token_days_says",)),
    Break("12. only the runtime files pages load are served", "relay/routes/pages.py",
          "only=RUNTIME_FILES", "only=None",
          ("tests/test_pages.py::test_only_the_runtime_files_pages_load_are_served",), count=2),
    Break("13. native keys can be turned off", "relay/auth/tokens.py",
          "if not self._settings.native_keys:", "if False:",
          ("tests/test_tokens.py::test_native_keys_can_be_turned_off",
           "tests/test_proxy.py::test_native_keys_off_refuses_provider_keys")),
    Break("14. /similarity: a malformed answer is a 502", "relay/routes/similarity.py",
          "(_unit(v) for v in _embeddings(data, len(unique)))",
          '(_unit(i["embedding"]) for i in data["data"])',
          ("tests/test_similarity.py::test_malformed_embeddings_answer_is_a_502",)),
    # -- issue 20, item 3: assertions as tight as the claims ---------------------------------
    Break("20.3 parallel calls reserve against the budget", "relay/costing/budget.py",
          "self._reserved[email] = in_flight + amount", "self._reserved[email] = in_flight",
          (f"{CONC}::test_thirty_parallel_streams_stay_within_the_budget",)),
    Break("20.3 x-aipipe-remaining is the budget left after the call", "relay/forward/answers.py",
          "budget_headers(await self.budgets.remaining(call.email), cost)",
          "budget_headers(reservation.remaining_before, cost)",
          (f"{CONC}::test_output_allowance_is_lowered_to_what_the_budget_can_pay",)),
    Break("20.3 x-aipipe-remaining is exposed to CORS", "relay/edge.py",
          '"x-aipipe-cost, x-aipipe-remaining, ', '"x-aipipe-cost, ',
          (f"{CONC}::test_output_allowance_is_lowered_to_what_the_budget_can_pay",)),
    Break("20.3 JSON answers carry their cost", "relay/forward/answers.py",
          "headers.update(budget_headers(await self.budgets.remaining(call.email), cost))",
          "headers.update(budget_headers(await self.budgets.remaining(call.email)))",
          ("tests/test_costing_endpoints.py", "-k", "embeddings or image or transcription")),
    Break("20.3 the CSV export holds every column's value", "relay/store/duckdb_ledger.py",
          "for name, sql_type in LEDGER_COLUMNS\n)", "for name, sql_type in LEDGER_COLUMNS[:-1]\n)",
          ("tests/test_admin.py::test_export_returns_the_ledger",)),
    # -- issue 20, item 4: caps in every spelling -----------------------------------------------
    Break("20.4 Gemini: maxOutputTokens is written", "relay/providers/registry.py",
          '"max_output_tokens"), "maxOutputTokens",', '"max_output_tokens"), "max_output_tokens",',
          (f"{WORST}::test_the_cap_goes_in_the_field_the_provider_reads",)),
    Break("20.4 Gemini: candidateCount divides the cap", "relay/providers/registry.py",
          '("candidateCount", "candidate_count")', "()",
          (f"{WORST}::test_several_candidates_divide_the_cap_gemini",)),
    Break("20.4 Responses: max_output_tokens is written", "relay/providers/registry.py",
          '_RESPONSES = OutputCap(("max_output_tokens",), "max_output_tokens")',
          '_RESPONSES = OutputCap(("max_output_tokens",), "max_tokens")',
          (f"{WORST}::test_the_cap_goes_in_the_field_the_provider_reads",)),
    Break("20.4 OpenRouter: max_tokens is written", "relay/providers/registry.py",
          '("openrouter", "chat"): OutputCap(_CHAT_FIELDS, "max_tokens",',
          '("openrouter", "chat"): OutputCap(_CHAT_FIELDS, "max_completion_tokens",',
          (f"{WORST}::test_the_cap_goes_in_the_field_the_provider_reads",)),
    Break("20.4 OpenAI: n replies divide the cap", "relay/providers/registry.py",
          '_OPENAI_CHAT = OutputCap(_CHAT_FIELDS, "max_completion_tokens", ("n", "best_of"))',
          '_OPENAI_CHAT = OutputCap(_CHAT_FIELDS, "max_completion_tokens", ("n",))',
          (f"{WORST}::test_several_replies_divide_the_cap_openai",)),
    Break("20.4 the smallest useful cap is 16 tokens", "relay/forward/admission.py",
          "MIN_OUTPUT_TOKENS = 16", "MIN_OUTPUT_TOKENS = 1",
          (f"{WORST}::test_the_smallest_useful_cap_is_sixteen_tokens",)),
    Break("20.4 the prompt's cost comes off the cap", "relay/costing/cost.py",
          "left = remaining - reserve_estimate(price, input_tokens, 0)", "left = remaining",
          (f"{WORST}::test_the_prompt_cost_comes_off_the_cap", "tests/test_admission_property.py")),
    # -- issue 17: Anthropic ------------------------------------------------------------------
    Break("17. max_tokens is required, never invented", "relay/forward/call.py",
          "        if cap.required:", "        if False:",
          (f"{ANTH}::test_a_message_without_max_tokens_is_refused",)),
    Break("17. a thinking budget above max_tokens is the worst case", "relay/forward/call.py",
          "return worst_output(section, largest) if cap.thinking else largest", "return largest",
          (f"{ANTH_BUDGET}::test_interleaved_thinking_above_max_tokens_is_bounded_by_the_budget",
           "tests/test_admission_property.py")),
    Break("17. the thinking budget is lowered with max_tokens", "relay/forward/thinking.py",
          'body["thinking"]["budget_tokens"] = max(', "_ = max(",
          (f"{ANTH_BUDGET}::test_a_thinking_budget_is_lowered_with_max_tokens_and_stays_valid",
           "tests/test_admission_property.py")),
    Break("17. thinking is refused when the budget cannot pay 1,024 tokens and a reply",
          "relay/forward/thinking.py",
          "return MIN_THINKING + REPLY_ROOM if thinking_budget(body) is not None else 0",
          "return 0",
          (ANTH_BUDGET, "-k", "cannot_pay")),
    Break("17. a thinking budget Anthropic refuses is refused", "relay/forward/thinking.py",
          "or budget < MIN_THINKING:", "or budget < 1:",
          (ANTH_BUDGET, "-k", "would_refuse", "tests/test_admission_property.py")),
    Break("17. tool definitions count in the prompt's estimate", "relay/forward/call.py",
          "return len(json.dumps(tools)) if isinstance(tools, list) and tools else 0", "return 0",
          (f"{ANTH_BUDGET}::test_tool_definitions_count_in_the_prompts_estimate",)),
    Break("17. fast mode and US-only inference are refused", "relay/providers/registry.py",
          '"messages": {"speed": ("standard",), "inference_geo": ("global",)},', "",
          (ANTH, "-k", "billed_above")),
    Break("17. the token is read from x-api-key", "relay/auth/tokens.py",
          '_KEY_HEADERS = ("x-goog-api-key", "x-api-key")', '_KEY_HEADERS = ("x-goog-api-key",)',
          (f"{ANTH}::test_a_token_as_x_api_key_is_swapped_for_the_operators_key",)),
    Break("17. a caller's x-api-key never goes upstream", "relay/forward/passthrough.py",
          '"x-goog-api-key", "x-api-key", "content-length",', '"x-goog-api-key", "content-length",',
          (ANTH, "-k", "never_goes_upstream")),
    Break("17. Message Batches are refused", "relay/providers/registry.py",
          '    "/v1/messages/count_tokens": "free",',
          '    "/v1/messages/count_tokens": "free",\n    "/v1/messages/batches": "free",',
          (ANTH, "-k", "batches_files")),
    Break("17. a broken Anthropic stream ends with an event its SDKs raise",
          "relay/forward/passthrough.py", "    if name:\n", "    if False:\n",
          (ANTH, "-k", "broken_stream")),
)


def run(index: int, br: Break) -> bool:
    """Apply break `index`, run its tests, restore the file; True when the tests failed."""
    path = ROOT / br.file
    original = path.read_text()
    found = original.count(br.old)
    if found != br.count:
        raise SystemExit(f"break {index} ({br.rule}): {br.old!r} found {found} times in {br.file}")
    try:
        path.write_text(original.replace(br.old, br.new))
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *br.tests],
            cwd=ROOT, capture_output=True, text=True,
        )
    finally:
        path.write_text(original)
    caught = result.returncode == 1  # tests failed (not: collection error, no tests, usage)
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"{index:2} {'caught' if caught else 'MISSED'}  {br.rule}  [{summary}]", flush=True)
    return caught


def main(argv: list[str]) -> int:
    chosen = [int(a) for a in argv] or list(range(1, len(BREAKS) + 1))
    missed = [i for i in chosen if not run(i, BREAKS[i - 1])]
    print(f"{len(chosen) - len(missed)} of {len(chosen)} breaks caught" +
          (f"; missed: {missed}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
