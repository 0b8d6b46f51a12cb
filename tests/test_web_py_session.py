"""web/py/session.py under CPython: the stored profile and the relay's error envelope."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

WEB_PY = Path(__file__).resolve().parents[1] / "web" / "py"
spec = importlib.util.spec_from_file_location("webpy_session", WEB_PY / "session.py")
assert spec and spec.loader
session = importlib.util.module_from_spec(spec)
spec.loader.exec_module(session)


def test_profile_keeps_known_string_fields() -> None:
    """A /token answer becomes a profile with token, email, name, picture; nothing else."""
    data = {"token": "t", "email": "a@b.c", "name": "A", "picture": "", "admin": True, "x": 1}
    assert session.profile_from(data) == {"token": "t", "email": "a@b.c", "name": "A"}


@pytest.mark.parametrize("data", [
    None, [], "x", {}, {"token": "t"}, {"email": "a@b.c"}, {"token": "", "email": "a@b.c"},
    {"token": "t", "email": "not-an-email"}, {"token": 5, "email": "a@b.c"},
])
def test_unusable_profiles_are_refused(data: object) -> None:
    """Without a token and an email there is no profile (the page shows sign-in)."""
    assert session.profile_from(data) is None


def test_storage_round_trip_and_corruption() -> None:
    """What the page stores loads back; corrupt storage counts as signed out."""
    profile = {"token": "t.o.k", "email": "a@b.c", "name": "Zoë"}
    assert session.load(session.dump(profile)) == profile
    assert json.loads(session.dump(profile)) == profile  # what aipipe.js reads
    for raw in (None, "", "{", "null", "[]", '{"token": "t"}'):
        assert session.load(raw) is None


def test_error_message_reads_both_envelopes() -> None:
    """The relay's `message`, else OpenAI's `error.message`, else the status."""
    assert session.error_message(401, {"message": "bad", "error": {"message": "x"}}) == "bad"
    assert session.error_message(400, {"error": {"message": "from error"}}) == "from error"
    assert session.error_message(502, "<html>") == "the server answered HTTP 502"
    assert session.error_message(0, {"message": "network error: x"}) == "network error: x"


def test_greeting() -> None:
    """The signed-in heading uses the name when Google gave one."""
    assert session.greeting({"email": "a@b.c"}) == "Signed in as a@b.c"
    assert session.greeting({"email": "a@b.c", "name": "A"}) == "Signed in as A (a@b.c)"
