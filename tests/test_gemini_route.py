"""`/gemini/<version>/<path>`: the version in the path (as google-genai sends it), forwarded to
the Gemini root, priced and budgeted exactly as `/geminiv1beta/<path>`."""

from __future__ import annotations

import pytest

from relay.providers.registry import BY_NAME, PROVIDERS, classify, split_version, upstream_base
from tests.conftest import auth, with_settings
from tests.fake_port import FAKES
from tests.test_costing_endpoints import gemini_body, ledger

GEMINI = PROVIDERS["gemini"]
OLD = PROVIDERS["geminiv1beta"]


@pytest.mark.parametrize(("base", "root"), [
    ("http://h/gem/v1beta", "http://h/gem"),
    ("https://generativelanguage.googleapis.com/v1beta", "https://generativelanguage.googleapis.com"),
    ("http://h/gem/v1", "http://h/gem"),
    ("http://h/gem/v1alpha2", "http://h/gem"),
    ("http://h/gem", "http://h/gem"),  # no version segment: the base is the root
    ("http://h/v1beta-proxy", "http://h/v1beta-proxy"),
])
def test_the_gemini_root_is_the_base_without_its_version(base: str, root: str) -> None:
    """The root drops only a trailing version segment; /geminiv1beta keeps the base as it is."""
    assert upstream_base(GEMINI, base) == root
    assert upstream_base(OLD, base) == base


def test_paths_are_read_after_their_version() -> None:
    """The version is split off before the path is classified; a path with none is refused."""
    assert split_version(GEMINI, "/v1beta/models/m:generateContent") == (
        "/v1beta", "/models/m:generateContent")
    assert split_version(OLD, "/v1beta/models/x") == ("", "/v1beta/models/x")
    generate = classify(GEMINI, "POST", "/v1/models/gemini-2.5-flash:streamGenerateContent")
    assert (generate.kind, generate.model, generate.stream) == ("generate", "gemini-2.5-flash", True)
    assert classify(GEMINI, "GET", "/v1beta/models").kind == "free"
    assert classify(GEMINI, "POST", "/models/gemini-2.5-flash:generateContent").kind == "unknown"
    assert classify(GEMINI, "POST", "/v1beta2x/models/m:generateContent").kind == "unknown"


def test_one_provider_under_two_routes() -> None:
    """Both routes are the provider `gemini` (one key, one base variable, one price table)."""
    assert GEMINI.name == OLD.name == "gemini"
    assert BY_NAME["gemini"] is OLD


def test_the_spec_example(make_client, settings, token, upstream) -> None:
    """With the base `<up>/gemini/v1beta`, `/gemini/v1beta/models/m:generateContent` goes to
    `<up>/gemini/v1beta/models/m:generateContent`, and `/geminiv1beta/models/...` to the same URL."""
    bases = {**settings.provider_bases, "gemini": f"{FAKES.url}/gemini/v1beta"}
    client = make_client(with_settings(settings, provider_bases=bases))
    for path in ("/gemini/v1beta/models/gemini-2.5-flash:generateContent",
                 "/geminiv1beta/models/gemini-2.5-flash:generateContent"):
        r = client.post(path, json=gemini_body(), headers=auth(token()))
        assert r.status_code == 200, r.text
    assert [r["path"] for r in upstream.state.received] == [
        "/gemini/v1beta/models/gemini-2.5-flash:generateContent"] * 2


@pytest.mark.parametrize("stream", [False, True])
def test_cost_and_budget_as_on_geminiv1beta(client, token, upstream, stream) -> None:
    """The same call on both routes: same tokens, same cost, same budget; the key in `?key=`
    works on both."""
    action = "streamGenerateContent?alt=sse&" if stream else "generateContent?"
    tok = token()
    for route in ("/geminiv1beta", "/gemini/v1beta"):
        r = client.post(f"{route}/models/gemini-2.5-flash:{action}key={tok}", json=gemini_body())
        assert r.status_code == 200, r.text
    old, new = ledger(client)
    same = ("provider", "model", "outcome", "input_tokens", "output_tokens", "cost", "cost_source",
            "streamed")
    assert {k: old[k] for k in same} == {k: new[k] for k in same}
    assert new["cost"] > 0 and new["path"] == old["path"].replace("/models", "/v1beta/models")
    assert all("key=" not in r["query"] for r in upstream.state.received)


def test_a_path_without_a_version_is_refused_before_the_provider(client, token, upstream) -> None:
    """`/gemini/models/...` names no API version: 400, nothing sent upstream."""
    r = client.post("/gemini/models/gemini-2.5-flash:generateContent", json=gemini_body(),
                    headers=auth(token()))
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_endpoint"
    assert upstream.state.received == []
