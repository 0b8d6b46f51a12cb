"""`/similarity` in front of a provider that answers embeddings wrongly: a 502 in the one
envelope (the provider's fault), never a 500, and the call is still charged."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from relay.app import create_app
from relay.auth.tokens import issue_token
from tests.conftest import auth, make_settings

GOOD = [{"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
        {"object": "embedding", "index": 1, "embedding": [0.6, 0.8]}]
USAGE = {"prompt_tokens": 2, "total_tokens": 2}
MALFORMED: dict[str, Any] = {
    "no data": {"object": "list", "usage": USAGE},
    "data not a list": {"data": {"0": [1.0]}, "usage": USAGE},
    "index missing": {"data": [{"embedding": [1.0, 0.0]}, GOOD[1]], "usage": USAGE},
    "index out of range": {"data": [GOOD[0], {**GOOD[1], "index": 7}], "usage": USAGE},
    "index a bool": {"data": [GOOD[0], {**GOOD[1], "index": True}], "usage": USAGE},
    "a text missing": {"data": [GOOD[0]], "usage": USAGE},
    "a text twice": {"data": [GOOD[0], GOOD[0], GOOD[1]], "usage": USAGE},
    "embedding a string": {"data": [GOOD[0], {**GOOD[1], "embedding": "AAAA"}], "usage": USAGE},
    "embedding of strings": {"data": [GOOD[0], {**GOOD[1], "embedding": ["1", "2"]}],
                             "usage": USAGE},
    "ragged vectors": {"data": [GOOD[0], {**GOOD[1], "embedding": [1.0, 0.0, 3.0]}],
                       "usage": USAGE},
    "empty vectors": {"data": [{**GOOD[0], "embedding": []}, {**GOOD[1], "embedding": []}],
                      "usage": USAGE},
    "items not objects": {"data": [[1.0, 0.0], [0.6, 0.8]], "usage": USAGE},
    "a list": [GOOD],
    "not JSON": b"<html>upstream proxy error</html>",
}


def _provider(answer: Any, status: int = 200) -> Starlette:
    """A provider whose embeddings endpoint always gives `answer`."""
    async def embeddings(request: Request) -> Response:
        if isinstance(answer, bytes):
            return Response(answer, status_code=status, media_type="application/json")
        return JSONResponse(answer, status_code=status)

    return Starlette(routes=[Route("/openai/v1/embeddings", embeddings, methods=["POST"])])


def _relay(tmp_path: Path, answer: Any, status: int = 200) -> tuple[TestClient, str]:
    settings = make_settings(tmp_path)
    app = create_app(settings, transport=httpx.ASGITransport(app=_provider(answer, status)))
    return TestClient(app, raise_server_exceptions=False), issue_token(settings, "s@example.com")


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_embeddings_answer_is_a_502(tmp_path: Path, case: str) -> None:
    """Whatever is wrong with the provider's answer, /similarity answers 502 in the envelope."""
    client, tok = _relay(tmp_path, MALFORMED[case])
    with client:
        r = client.post("/similarity", json={"docs": ["a", "b"]}, headers=auth(tok))
        body = r.json()
        assert r.status_code == 502, (case, r.text)
        assert body["error"] == {"message": body["message"], "type": "upstream_error",
                                 "code": "malformed_answer"}
        client.app.state.store.flush()
        assert client.app.state.store.spend("s@example.com", 7) > Decimal(0)  # still charged


@pytest.mark.parametrize("error", [{"error": "boom"}, {"error": {"message": "bad model"}}, ["x"]])
def test_a_refusal_in_any_shape_keeps_the_providers_status(tmp_path: Path, error: Any) -> None:
    """A 400 from the provider, whatever its error body looks like, is a 400 in our envelope."""
    client, tok = _relay(tmp_path, error, 400)
    with client:
        r = client.post("/similarity", json={"docs": ["a", "b"]}, headers=auth(tok))
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == "upstream_error"
        assert r.json()["message"].startswith("The provider refused the call: ")


def test_a_good_answer_still_works(tmp_path: Path) -> None:
    """The checks pass a well-formed answer: cosine similarities of the unit vectors."""
    client, tok = _relay(tmp_path, {"data": GOOD, "usage": USAGE})
    with client:
        r = client.post("/similarity", json={"docs": ["a", "b"]}, headers=auth(tok))
        assert r.status_code == 200, r.text
        assert r.json()["similarity"] == [[1.0, 0.6], [0.6, 1.0]]
        assert r.json()["usage"] == {"prompt_tokens": 2}
