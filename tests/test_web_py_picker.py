"""The playground's model picker and the shared HTML pieces under CPython: web/py/picker.py
(groups, prices, default model, arrow keys) and web/py/markup.py (escaping, the code box with
tabs, legends, ranked bars, empty states)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.test_web_py_playground import _load

catalog, picker, markup = _load("catalog"), _load("picker"), _load("markup")

PRICES = {"openai": {"gpt-4o-mini": {"input": 0.15, "output": 0.6},
                     "gpt-4.1-nano": {"input": 0.1, "output": 0.4}}}
OPENAI = {"data": [{"id": "gpt-4o-mini"}, {"id": "gpt-4.1-nano"}, {"id": "whisper-1"}]}
ROUTER = {"data": [
    {"id": "anthropic/claude-3.5-haiku", "name": "Anthropic: Claude 3.5 Haiku",
     "pricing": {"prompt": "0.0000008", "completion": "0.000004"}},
    {"id": "openai/gpt-4.1-nano", "pricing": {"prompt": "0.0000001", "completion": "0.0000004"}},
    {"id": "meta-llama/llama-3-8b:free", "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "someone/odd", "pricing": {"prompt": "-1", "completion": "-1"}},
]}
MODELS = catalog.openai_models(OPENAI, PRICES) + catalog.openrouter_models(ROUTER)


class Tags(HTMLParser):
    """Every start tag with its attributes, and whether the tags balance."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ("input", "br", "img"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    assert tags.open == [], f"unclosed {tags.open}"
    return tags


def test_models_are_grouped_by_provider_then_lab() -> None:
    """OpenAI's own list first, then OpenRouter's, one group per lab with a readable name."""
    groups = [(heading, [m["id"] for m in members]) for heading, members in picker.grouped(MODELS)]
    assert groups == [
        ("OpenAI", ["gpt-4.1-nano", "gpt-4o-mini"]),
        ("OpenRouter · Anthropic", ["anthropic/claude-3.5-haiku"]),
        ("OpenRouter · Meta Llama", ["meta-llama/llama-3-8b:free"]),
        ("OpenRouter · OpenAI", ["openai/gpt-4.1-nano"]),
        ("OpenRouter · someone", ["someone/odd"]),
    ]
    assert [m["key"] for m in picker.ordered(MODELS)][:3] == [
        "openai:gpt-4.1-nano", "openai:gpt-4o-mini", "openrouter:anthropic/claude-3.5-haiku"]


def test_listbox_html_is_an_accessible_grouped_list_with_prices() -> None:
    """role=listbox content: groups labelled by their heading, one option per model carrying
    its key, the chosen one aria-selected, the keyboard's one marked active, names escaped."""
    html = picker.listbox_html(MODELS, "openai:gpt-4o-mini", "openrouter:anthropic/claude-3.5-haiku")
    tags = parse(html)
    groups = [a for t, a in tags.tags if a.get("role") == "group"]
    options = [a for t, a in tags.tags if a.get("role") == "option"]
    labels = {a["id"] for t, a in tags.tags if a.get("class") == "group-label"}
    assert len(groups) == 5 and {g["aria-labelledby"] for g in groups} == labels
    assert [o["data-value"] for o in options] == [m["key"] for m in picker.ordered(MODELS)]
    assert [o["aria-selected"] for o in options].count("true") == 1
    assert next(o for o in options if o["aria-selected"] == "true")["data-value"] == "openai:gpt-4o-mini"
    active = [o for o in options if o.get("class") == "active"]
    assert [o["id"] for o in active] == [picker.option_id("openrouter:anthropic/claude-3.5-haiku")]
    assert len({o["id"] for o in options}) == len(options)  # ids are unique
    assert ">claude-3.5-haiku<" in html and "$0.80 / $4.00" in html  # the lab is in the heading
    assert ">free<" in html and ">price varies<" in html
    evil = catalog.entry("openrouter", 'x/<img src=x onerror="1">', 1, 1)
    assert "<img" not in picker.listbox_html([evil], "", "")


@pytest.mark.parametrize(("wanted", "expected"), [
    ("openrouter:anthropic/claude-3.5-haiku", "openrouter:anthropic/claude-3.5-haiku"),
    ("openai:gone", "openai:gpt-4.1-nano"),  # no longer offered: a cheap default
    ("", "openai:gpt-4.1-nano"),
])
def test_default_model(wanted: str, expected: str) -> None:
    """The user's last choice while it is offered, else a cheap model, else the first."""
    assert picker.default_key(MODELS, wanted) == expected
    assert picker.default_key([], "x") == ""
    only = catalog.openrouter_models({"data": [ROUTER["data"][0]]})
    assert picker.default_key(only, "") == "openrouter:anthropic/claude-3.5-haiku"


def test_arrow_keys_move_through_the_list_without_wrapping() -> None:
    keys = [f"k{i}" for i in range(20)]
    assert picker.move(keys, "k0", "ArrowDown") == "k1"
    assert picker.move(keys, "k0", "ArrowUp") == "k0"
    assert picker.move(keys, "k19", "ArrowDown") == "k19"
    assert picker.move(keys, "k3", "PageDown") == "k11"
    assert picker.move(keys, "k3", "PageUp") == "k0"
    assert picker.move(keys, "k3", "End") == "k19" and picker.move(keys, "k3", "Home") == "k0"
    assert picker.move(keys, "gone", "ArrowDown") == "k0"
    assert picker.move(keys, "gone", "a") == "k0" and picker.move([], "x", "ArrowDown") == ""


def test_a_long_list_is_drawn_in_part_and_built_once() -> None:
    """Hundreds of OpenRouter models: the list draws the first 150 matches (typing narrows it),
    says so, and each option's HTML is built once (a cache shared between key presses) and
    gives the same list as building it fresh."""
    many = catalog.openrouter_models({"data": [
        {"id": f"lab{i % 9}/model-{i}", "pricing": {"prompt": "0.000001", "completion": "0.000002"}}
        for i in range(400)]})
    drawn = picker.shown(catalog.search(many, "model"))
    assert len(drawn) == 150
    assert picker.count_text(400, 400, "model", 150) == (
        "400 of 400 models match (first 150 shown: type to narrow) · USD per 1M tokens, input / output")
    cache: dict = {}
    first = picker.listbox_html(drawn, drawn[3]["key"], drawn[5]["key"], cache)
    assert len(cache) == 150
    assert first == picker.listbox_html(drawn, drawn[3]["key"], drawn[5]["key"])
    again = picker.listbox_html(drawn, drawn[4]["key"], drawn[4]["key"], cache)
    assert again.count('aria-selected="true"') == 1 and again.count('class="active"') == 1
    assert [m["id"] for m in catalog.search(many, "lab3 model-39")] == [
        "lab3/model-39", "lab3/model-390", "lab3/model-399"]  # every word, anywhere


def test_count_and_prices() -> None:
    assert picker.count_text(2, 8, "4o") == "2 of 8 models match · USD per 1M tokens, input / output"
    assert picker.count_text(1, 1, "") == "1 model · USD per 1M tokens, input / output"
    nano = catalog.find(MODELS, "openai:gpt-4.1-nano")
    assert picker.price_short(nano) == "$0.10 / $0.40"


def test_code_box_tabs_and_copy_never_overlap_the_code() -> None:
    """One tab per example (ARIA tabs: only the first selected and focusable), one Copy button
    in the toolbar above the code, panes keep their data-testid, code is escaped and the code
    area can take keyboard focus (it scrolls)."""
    items = [("curl", "curl", "curl -d '<x>'"), ("python", "Python", "print('a & b')")]
    tags = parse(markup.code_box("snippets", items))
    tabs = [a for t, a in tags.tags if a.get("role") == "tab"]
    panes = [a for t, a in tags.tags if a.get("role") == "tabpanel"]
    assert [t["aria-selected"] for t in tabs] == ["true", "false"]
    assert [t["tabindex"] for t in tabs] == ["0", "-1"]
    assert [p["data-testid"] for p in panes] == ["snippet-curl", "snippet-python"]
    assert [p["aria-labelledby"] for p in panes] == [t["id"] for t in tabs]
    assert "hidden" not in panes[0] and "hidden" in panes[1]
    assert [a for t, a in tags.tags if t == "pre"] == [{"tabindex": "0"}] * 2
    copies = [a for t, a in tags.tags if t == "button" and "copy" in a.get("class", "")]
    assert len(copies) == 1
    html = markup.code_box("s", items)
    assert html.index("copy") < html.index("<pre")  # the button sits above the code
    assert "curl -d &#39;&lt;x&gt;&#39;" in html


@pytest.mark.parametrize(("index", "key", "expected"), [
    (0, "ArrowRight", 1), (4, "ArrowRight", 0), (0, "ArrowLeft", 4), (2, "Home", 0),
    (2, "End", 4), (2, "a", 2)])
def test_tab_keys(index: int, key: str, expected: int) -> None:
    assert markup.next_tab(index, 5, key) == expected


def test_legend_ranked_and_empty_state() -> None:
    legend = markup.legend([("#4c78a8", "gpt-<4o>", "$0.25")], "Models")
    assert 'background:#4c78a8' in legend and "gpt-&lt;4o&gt;" in legend and "Models" in legend
    ranked = markup.ranked([("a@x", "$1.00", 100), ("b@x", "$0.50", 150)])
    assert 'width:100%' in ranked and ranked.count("width:100%") == 2  # capped
    parse(ranked)
    empty = markup.empty_state("No spend yet", "Soon.", "/playground", "Try it")
    assert 'href="/playground"' in empty and "<h3>No spend yet</h3>" in empty
    parse(empty)
    assert markup.slug("openai:gpt-4o/Mini") == "openai-gpt-4o-mini"
