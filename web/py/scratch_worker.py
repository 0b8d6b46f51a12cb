"""The scratchpad worker's Python (Pyodide inside a Web Worker, started by worker.mjs): gives
`aipipe` the browser's fetch as its transport, runs cells with cellrun and posts their output
and cost to the page. Imports `js` and `pyodide`, so it is browser glue; the e2e test runs it.

Waiting on the network: with JSPI (Chromium has it), `pyodide.ffi.run_sync` blocks Python on a
fetch() promise, so `aipipe.chat` is plain synchronous code and `aipipe.stream` yields each piece
as it arrives. Without JSPI a synchronous XMLHttpRequest (allowed in workers) does the calls and
a stream arrives whole, then is yielded piece by piece.
"""

import io
import sys

import aipipe
import cellrun
import js
import pyodide
from pyodide.ffi import can_run_sync, run_sync, to_js


def post(message: dict) -> None:
    js.postMessage(to_js(message, dict_converter=js.Object.fromEntries))


def _js_object(values: dict):
    return to_js(values, dict_converter=js.Object.fromEntries)


class _Headers:
    """Response headers by name, case-insensitive (fetch's Headers or an XMLHttpRequest)."""

    def __init__(self, lookup):
        self.lookup = lookup

    def get(self, name, default=None):
        value = self.lookup(name)
        return default if value is None else str(value)


class BrowserHTTP:
    """aipipe's transport in the browser: fetch() when Python can wait on it (JSPI), else a
    synchronous XMLHttpRequest (`use_fetch=False` chooses that, as a browser without JSPI does)."""

    def __init__(self, use_fetch=True):
        self.use_fetch = use_fetch

    def _waits(self) -> bool:
        return self.use_fetch and can_run_sync()

    def request(self, method, url, headers, body):
        if not self._waits():
            return self._xhr(method, url, headers, body)
        response = self._fetch(method, url, headers, body)
        text = str(run_sync(response.text()))
        return int(response.status), _Headers(response.headers.get), text

    def stream(self, method, url, headers, body):
        if not self._waits():
            status, found, text = self._xhr(method, url, headers, body)
            return status, found, iter([text])
        response = self._fetch(method, url, headers, body)
        return int(response.status), _Headers(response.headers.get), _pieces(response.body)

    def _fetch(self, method, url, headers, body):
        options = {"method": method, "headers": _js_object(headers)}
        if body is not None:
            options["body"] = body
        sys.stdout.flush()  # show what the cell printed before waiting on the network
        return run_sync(js.fetch(url, _js_object(options)))

    def _xhr(self, method, url, headers, body):
        sys.stdout.flush()
        xhr = js.XMLHttpRequest.new()
        xhr.open(method, url, False)
        for name, value in headers.items():
            xhr.setRequestHeader(name, value)
        xhr.send(body)
        return int(xhr.status), _Headers(xhr.getResponseHeader), str(xhr.responseText)


def _pieces(body):
    """A fetch() body as text pieces, each as soon as it arrives; stopping early (a `break`
    out of aipipe.stream) cancels the request, and the relay records the call as cut short."""
    reader = body.getReader()
    decoder = js.TextDecoder.new()
    keep_going = _js_object({"stream": True})
    try:
        while True:
            sys.stdout.flush()
            result = run_sync(reader.read())
            if result.done:
                break
            yield str(decoder.decode(result.value, keep_going))
        tail = str(decoder.decode())
        if tail:
            yield tail
    finally:
        reader.cancel()


def setup(config) -> dict:
    """First call after Pyodide starts: the user's token, the relay, the default model."""
    aipipe.configure(token=config.get("token"), base_url=config.get("base_url"),
                     model=config.get("model"), http=BrowserHTTP())
    sys.stdin = io.StringIO("")  # no keyboard in a worker: input() ends with EOFError at once
    return {"python": sys.version.split()[0], "pyodide": pyodide.__version__,
            "streaming": "live" if can_run_sync() else "whole"}


async def run(request) -> None:
    """One cell: its output as it happens, then {"type": "done", ...} with what it cost."""
    ident = request.get("id")
    aipipe.configure(token=request.get("token"), model=request.get("model"))
    since = len(aipipe.calls)

    def write(stream, text):
        post({"type": "out", "id": ident, "stream": stream, "text": text})

    outcome = await cellrun.run(request.get("code") or "", write)
    cost, count, unknown = aipipe.spent(since)
    post({"type": "done", "id": ident, **outcome, "calls": count, "cost": str(cost),
          "unknown": unknown})
