"""The scratchpad page's logic: starter examples, which code to show first, the default model,
and the words for progress and results. Runs under CPython and MicroPython (no dict order is
relied on); scratchpad_page.py only wires it to the page.
"""

import catalog
import money

STORAGE_KEY = "aipipe-scratchpad"  # localStorage: the code, kept between visits
CODE_PARAM = "code="  # /scratchpad#code=<percent-encoded Python> (the playground's link)
LINKED_NOTE = ("This code came from a link. Read it before you press Run: it runs with your "
               "AI Pipe token.")
MAX_OUTPUT = 200_000  # characters kept in the output area; a runaway print loop stops there
# Cheap, capable chat models to default to when the relay has real keys (first priced wins).
PREFERRED = ("gpt-4.1-nano", "gpt-5-nano", "gpt-4o-mini", "gpt-4.1-mini", "gpt-5-mini")

EXAMPLES = (
    ("one-call", "One call", '''import aipipe

answer = aipipe.chat("In one sentence: why is the sky blue?")
print(answer)
'''),
    ("loop", "A loop over prompts", '''import aipipe

words = ["serendipity", "ephemeral", "ubiquitous"]
for word in words:
    meaning = aipipe.chat(f"Define '{word}' in at most ten words.", max_tokens=40)
    print(f"{word}: {meaning}")
'''),
    ("stream", "Streaming", '''import aipipe

# Pieces of the reply are printed as they arrive.
for piece in aipipe.stream("Write a haiku about the sea.", temperature=0.7):
    print(piece, end="")
print()
'''),
    ("evaluate", "Compare two models", '''import aipipe

# A tiny evaluation: the same questions to two models, scored against known answers.
MODELS = [$MODEL, $OTHER]
QUESTIONS = [
    ("What is 17 * 3? Answer with the number only.", "51"),
    ("What is the capital of Australia? One word.", "Canberra"),
    ("Is 91 a prime number? Answer yes or no.", "no"),
]
for model in MODELS:
    score = 0
    for question, expected in QUESTIONS:
        answer = aipipe.chat(question, model=model, temperature=0)
        score += expected.lower() in answer.lower()
    print(f"{model}: {score}/{len(QUESTIONS)} right")

print(aipipe.usage()["remaining"], "USD left")
'''),
)


def example_ids() -> list:
    return [key for key, _title, _code in EXAMPLES]


def example(key, model="", other=""):
    """The example's code with the models filled in; None for an unknown key."""
    for name, _title, code in EXAMPLES:
        if name == key:
            return code.replace("$MODEL", _literal(model)).replace("$OTHER",
                                                                    _literal(other or model))
    return None


def _literal(text) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def code_param(fragment):
    """The percent-encoded code in a `#code=...` fragment, or None when there is none."""
    text = str(fragment or "")
    if text.startswith("#"):
        text = text[1:]
    for part in text.split("&"):
        if part.startswith(CODE_PARAM):
            return part[len(CODE_PARAM):]
    return None


def initial_code(linked, saved, model=""):
    """What the editor opens with: code from the playground's link, else what was left here last
    time, else the first example."""
    if linked:
        return linked
    if saved:
        return saved
    return example(EXAMPLES[0][0], model)


def chat_models(prices) -> list:
    """OpenAI chat models in the relay's price table, cheapest first (input + output price)."""
    table = (prices or {}).get("openai") if isinstance(prices, dict) else None
    found = []
    for name in sorted(table or {}):
        price = table[name]
        if not isinstance(price, dict) or not catalog.is_chat_model(name):
            continue
        cost = [money.scaled(price.get(k), 6) for k in ("input", "output")]
        if cost[0] is not None and cost[1] is not None:
            found.append((cost[0] + cost[1], name))
    return [name for _cost, name in sorted(found)]


def default_models(config, prices) -> list:
    """[default, second] model names: the demo model on a keyless `--dev` relay; otherwise the
    first preferred cheap model the relay prices, then the cheapest other one."""
    demo = (config or {}).get("demo_model")
    if demo:
        return [demo, demo]
    priced = chat_models(prices)
    ordered = [name for name in PREFERRED if name in priced] + \
        [name for name in priced if name not in PREFERRED]
    if not ordered:
        return ["gpt-4.1-nano", "gpt-4.1-nano"]  # the relay prices nothing: a safe guess
    return [ordered[0], ordered[1] if len(ordered) > 1 else ordered[0]]


def loading_text(step_text, seconds) -> str:
    return str(step_text) + " " + _seconds(seconds)


def ready_text(info) -> str:
    """The worker's "ready" message -> the status line."""
    python = info.get("python") or "?"
    text = "Python " + python + " ready (Pyodide " + str(info.get("pyodide") or "?") + \
        ", started in " + _seconds((info.get("ms") or 0) / 1000) + ")"
    if info.get("streaming") == "whole":
        text += " · this browser has no JSPI: streams arrive whole"
    return text


def run_summary(done) -> str:
    """The worker's "done" message -> one line: how it ended, how long, calls and their cost."""
    if done.get("ok"):
        head = "Done in " + _seconds(done.get("seconds") or 0)
    else:
        head = "Failed: " + str(done.get("error") or "error")
    return head + " · " + cost_text(done)


def cost_text(done) -> str:
    calls = done.get("calls") or 0
    if not calls:
        return "no model calls"
    text = str(calls) + (" call" if calls == 1 else " calls") + " · " + \
        money.usd(money.scaled(done.get("cost") or "0"))
    unknown = done.get("unknown") or 0
    if unknown:
        text += " + " + str(unknown) + " cut short (the relay records an estimate)"
    return text


def stopped_text(seconds) -> str:
    return ("Stopped after " + _seconds(seconds) + ". Python restarts; a call cut short is "
            "recorded by the relay as an estimate.")


def _seconds(seconds) -> str:
    tenths = int(seconds * 10 + 0.5)
    return str(tenths // 10) + "." + str(tenths % 10) + " s"
