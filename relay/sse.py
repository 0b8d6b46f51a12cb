"""Reads usage from a response stream on the side, as its bytes pass through to the client.

The relay tees every upstream chunk into `StreamUsageReader.feed`; the reader never changes or
holds back bytes. It is built for the hot path: each byte is looked at a bounded number of times
(no re-scan of what came before), and only the JSON of events that carry usage or errors is
ever parsed — lazily, when a property is read. Text deltas are measured with a regex, for cost
estimates of streams that end without usage.

Formats: Server-Sent Events (`data:` and `event:` lines, `:` comments, `[DONE]`, CRLF or LF)
from OpenAI chat completions, the Responses API, OpenRouter and Gemini `alt=sse`; Gemini's
default stream (one JSON array, elements arriving over time); a plain JSON body.
Each `data:` line is taken as one event (no provider splits JSON over several `data:` lines).
"""

from __future__ import annotations

import codecs
import json
import re
from decimal import Decimal
from typing import Any

from relay.usage import Usage, usage_from_json

_DECODER = json.JSONDecoder(parse_float=Decimal)  # exact reported costs
_JSON_WS = " \t\r\n"
_ARRAY_LIMIT = 32 * 1024 * 1024  # stop buffering an array element that never closes

# Keys are found with bytes.find (fast) and only then checked with a regex anchored there.
# `"usage": null` (in OpenAI chunks before the last) is not usage: the value must be an object.
_OBJECT_AFTER = re.compile(rb"\s*:\s*\{")
_STRING_AFTER = re.compile(rb'\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"')
_MODEL = re.compile(rb'"model(?:Version)?"\s*:\s*"([^"\\]{1,200})"')
# Billed output text in deltas: OpenAI/OpenRouter chat (content, reasoning, tool arguments),
# Responses API (`delta` of *.delta events); Gemini parts (`text`).
_OPENAI_TEXT = (b'"content"', b'"reasoning"', b'"reasoning_content"', b'"refusal"', b'"arguments"')
_CONTENT = (b'"content"',)
_RESPONSES_TEXT = (b'"delta"',)
_GEMINI_TEXT = (b'"text"',)
_OPENAI_KEYS = frozenset({"content", "reasoning", "reasoning_content", "refusal", "arguments"})
_GEMINI_KEYS = frozenset({"text"})


class StreamUsageReader:
    """Fed raw response bytes as they stream; tells what the call used.

    `usage` is the last usage the stream reported (Gemini and OpenRouter report cumulative
    totals, so the last one counts once — never a sum); `output_chars` the characters of
    output text deltas seen; `model` the model the provider reported; `error` an error event
    seen mid-stream; `done` whether the stream's end marker arrived. Call `close()` when the
    stream ends so a last line without a newline is read too.
    """

    __slots__ = (
        "_array",
        "_chars",
        "_done",
        "_error",
        "_error_raw",
        "_event",
        "_gemini",
        "_json",
        "_keys",
        "_line",
        "_mode",
        "_model",
        "_provider",
        "_tried",
        "_usage",
        "_usage_key",
        "_usage_raw",
        "_utf8",
    )

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._gemini = provider.lower().startswith("gemini")
        self._usage_key = b'"usageMetadata"' if self._gemini else b'"usage"'
        self._keys = _GEMINI_KEYS if self._gemini else _OPENAI_KEYS
        self._mode = ""  # "sse" | "array" | "json" | "off", chosen by the first byte
        self._line: list[bytes] = []  # pieces of the current, unfinished SSE line
        self._event = b""  # the SSE `event:` name of the event being read
        self._usage_raw: bytes | None = None  # the last usage-carrying payload, not yet parsed
        self._usage: Usage | None = None
        self._error_raw: bytes | None = None
        self._error: dict[str, Any] | None = None
        self._chars = 0
        self._model: str | None = None
        self._done = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._array: list[str] = []  # undecoded remainder of a JSON array / document stream
        self._json = 0  # characters held in _array
        self._tried = 0  # size of _array at the last failed parse (doubling keeps it O(n))

    # -- input ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the response, split anywhere (even inside a character)."""
        if not chunk:
            return
        if not self._mode:
            start = chunk.lstrip()
            if not start:
                return
            first = start[:1]
            self._mode = "array" if first == b"[" else "json" if first == b"{" else "sse"
            chunk = start
        if self._mode == "sse":
            self._feed_sse(chunk)
        elif self._mode != "off":
            self._feed_json(chunk)

    def close(self) -> None:
        """The stream ended: read a last SSE line that had no newline, and any JSON left."""
        if self._mode == "sse" and self._line:
            line = b"".join(self._line)
            self._line.clear()
            self._sse_line(line)
        elif self._mode in ("array", "json"):
            self._scan(final=True)

    def _feed_sse(self, chunk: bytes) -> None:
        if b"\n" not in chunk:
            self._line.append(chunk)
            return
        if self._line:
            self._line.append(chunk)
            chunk = b"".join(self._line)
            self._line.clear()
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if rest:
            self._line.append(rest)
        for line in lines:  # inlined: this loop runs for every line of every stream
            if line.startswith(b"data:"):
                end = -1 if line.endswith(b"\r") else None
                self._payload(line[6:end] if line[5:6] == b" " else line[5:end])
            elif not line or line == b"\r":
                self._event = b""  # blank line: the event ends
            else:
                self._sse_line(line)

    def _sse_line(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            self._event = b""  # blank line: the event ends
        elif line.startswith(b"data:"):
            self._payload(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            self._event = line[6:].strip()
        # `:` comments (OpenRouter keep-alives), `id:` and `retry:` carry nothing we need

    def _payload(self, data: bytes) -> None:
        if data == b"[DONE]":
            self._done = True
            return
        event = self._event
        if not event and data.startswith(b'{"type":"'):  # Responses API without event lines
            event = data[9 : data.find(b'"', 9)]
        key = self._usage_key
        if key in data and _has_object(data, key):
            self._usage_raw = data  # cumulative or final: the last one is the usage
        if event:
            if event == b"error" or event == b"response.failed":
                self._error_raw, self._error = data, None
            elif event == b"response.completed":
                self._done = True
        if b'"error"' in data and _has_object(data, b'"error"'):
            self._error_raw, self._error = data, None
        if self._model is None:
            found = _MODEL.search(data)
            if found:
                self._model = found.group(1).decode("utf-8", "replace")
        if self._gemini:
            keys = _GEMINI_TEXT
        elif event.startswith(b"response."):
            if not event.endswith(b".delta"):
                return  # Responses API summaries repeat the text of the deltas
            keys = _RESPONSES_TEXT
        elif b"reasoning" in data or b"arguments" in data or b'"refusal":"' in data:
            keys = _OPENAI_TEXT
        else:
            keys = _CONTENT  # the common chunk: only `content` can carry text
        for key in keys:
            at = data.find(key)
            while at >= 0:
                at += len(key)
                found = _STRING_AFTER.match(data, at)
                if found:
                    self._chars += _text_len(found.group(1))
                    at = found.end()
                at = data.find(key, at)

    def _feed_json(self, chunk: bytes) -> None:
        text = self._utf8.decode(chunk)
        if not text:
            return
        self._array.append(text)
        self._json += len(text)
        if self._json > _ARRAY_LIMIT:
            self._mode = "off"  # a never-ending element: give up rather than hold it all
            self._array.clear()
            return
        if self._mode == "array" and self._json >= 2 * self._tried:
            self._scan(final=False)

    def _scan(self, *, final: bool) -> None:
        """Parse the complete JSON values held; keep the unfinished rest for later."""
        if final:
            tail = self._utf8.decode(b"", final=True)
            if tail:
                self._array.append(tail)
        buf = "".join(self._array)
        pos, end = 0, len(buf)
        while True:
            while pos < end and (buf[pos] in _JSON_WS or buf[pos] in ",["):
                pos += 1
            if pos < end and buf[pos] == "]":
                self._done = True
                pos = end
            if pos >= end:
                break
            try:
                value, pos = _DECODER.raw_decode(buf, pos)
            except json.JSONDecodeError:
                break  # unfinished (or broken): wait for more bytes
            self._value(value)
            if self._mode == "json":
                self._done = True  # a whole JSON body is a finished answer
        rest = buf[pos:]
        self._array = [rest] if rest else []
        self._json = len(rest)
        self._tried = len(rest)

    def _value(self, value: Any) -> None:
        """One whole JSON value: a Gemini array element, or a whole JSON body."""
        if not isinstance(value, dict):
            return
        found = usage_from_json(self._provider, value)
        if found is not None:
            self._usage, self._usage_raw = found, None
        if isinstance(value.get("error"), dict):
            self._error = value["error"]
        if self._model is None:
            model = value.get("modelVersion") or value.get("model")
            if isinstance(model, str):
                self._model = model
        self._chars += _walk_text(value, self._keys)

    # -- results ---------------------------------------------------------------------------

    def _sync(self) -> None:
        if self._mode in ("array", "json") and self._array:
            self._scan(final=False)
        if self._usage_raw is not None:
            raw, self._usage_raw = self._usage_raw, None
            try:
                value = json.loads(raw, parse_float=Decimal)
            except ValueError:
                return  # a malformed event: keep the usage read before it
            found = usage_from_json(self._provider, value)
            if found is not None:
                self._usage = found

    @property
    def usage(self) -> Usage | None:
        """The usage the stream reported (the last report), or None if none came."""
        self._sync()
        return self._usage

    @property
    def output_chars(self) -> int:
        """Characters of output text (content, reasoning, tool arguments) seen in deltas."""
        self._sync()
        return self._chars

    @property
    def model(self) -> str | None:
        """The model name as the provider reported it (e.g. a dated name)."""
        self._sync()
        return self._model

    @property
    def done(self) -> bool:
        """Whether the stream's end marker (`[DONE]`, `response.completed`, `]`) arrived."""
        self._sync()
        return self._done

    @property
    def error(self) -> dict[str, Any] | None:
        """The provider's error object, when the stream carried one."""
        self._sync()
        if self._error is None and self._error_raw is not None:
            try:
                value = json.loads(self._error_raw, parse_float=Decimal)
            except ValueError:
                return {"message": self._error_raw.decode("utf-8", "replace")[:500]}
            self._error = _error_of(value)
        return self._error


def _has_object(data: bytes, key: bytes) -> bool:
    """Whether `key` appears as an object's key with an object value (`"usage": {`)."""
    at = data.find(key)
    while at >= 0:
        at += len(key)
        if _OBJECT_AFTER.match(data, at):
            return True
        at = data.find(key, at)
    return False


def _error_of(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {"message": str(value)[:500]}
    if isinstance(value.get("error"), dict):
        return value["error"]  # OpenAI / OpenRouter / Gemini {"error": {...}}
    response = value.get("response")
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        return response["error"]  # Responses API `response.failed`
    return value  # Responses API `error` event: the event is the error


def _text_len(raw: bytes) -> int:
    """Characters of a JSON string literal's body, decoding escapes only when present."""
    if b"\\" in raw:
        try:
            return len(json.loads(b'"' + raw + b'"'))
        except ValueError:
            return len(raw)
    return len(raw) if raw.isascii() else len(raw.decode("utf-8", "replace"))


def _walk_text(value: Any, keys: frozenset[str]) -> int:
    if isinstance(value, dict):
        total = 0
        for k, v in value.items():
            if isinstance(v, str):
                if k in keys:
                    total += len(v)
            elif k != "usageMetadata" and k != "usage":
                total += _walk_text(v, keys)
        return total
    if isinstance(value, list):
        return sum(_walk_text(v, keys) for v in value)
    return 0
