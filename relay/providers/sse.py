"""Reads usage from a response stream on the side, as its bytes pass through to the client.

The relay tees every upstream chunk into `StreamUsageReader.feed`; the reader never changes or
holds back bytes. It is built for the hot path: `feed` only splits lines and keeps each event's
payload (a reference, up to a bound); nothing is searched or parsed until a property is read,
and then only what that property needs — `usage` looks back from the last event for the usage
report and parses that one event's JSON; `output_chars` (for estimates when no usage came)
measures text deltas with a regex, never a JSON parse. Each byte is looked at a bounded number
of times (no re-scan of what came before).

Formats: Server-Sent Events (`data:` and `event:` lines, `:` comments, `[DONE]`, CRLF or LF)
from OpenAI chat completions, the Responses API, OpenRouter, Gemini `alt=sse` and Anthropic
Messages; Gemini's default stream (one JSON array, elements arriving over time); a plain JSON
body.
Each `data:` line is taken as one event (no provider splits JSON over several `data:` lines).
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

from relay.costing.cost import estimate_tokens
from relay.costing.usage import Usage, usage_from_json
from relay.providers.stream_text import error_of, gemini_text, text_len, walk_text

_DECODER = json.JSONDecoder(parse_float=Decimal)  # exact reported costs
_JSON_WS = " \t\r\n"
_ARRAY_LIMIT = 32 * 1024 * 1024  # stop buffering an array element that never closes
_PENDING_LIMIT = 256 * 1024  # SSE payload bytes kept uninspected; past this they are inspected

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
# Anthropic deltas: text_delta `text`, thinking_delta `thinking`, input_json_delta `partial_json`.
_ANTHROPIC_TEXT = (b'"text"', b'"thinking"', b'"partial_json"')
_OPENAI_KEYS = frozenset({"content", "reasoning", "reasoning_content", "refusal", "arguments"})
_GEMINI_KEYS = frozenset({"text"})
_ANTHROPIC_KEYS = frozenset({"text", "thinking"})


class StreamUsageReader:
    """Fed raw response bytes as they stream; tells what the call used.

    `usage` is the last usage the stream reported (Gemini and OpenRouter report cumulative
    totals, so the last one counts once — never a sum; Anthropic reports the input in
    `message_start` and the running output in each `message_delta`, so those two combine);
    `output_chars` the characters of output text deltas seen; `model` the model the provider
    reported; `error` an error event seen mid-stream; `done` whether the stream's end marker
    arrived. Call `close()` when the stream ends so a last line without a newline is read too.
    """

    __slots__ = (
        "_anthropic", "_array", "_chars", "_done", "_error", "_error_raw", "_event", "_gemini",
        "_json", "_keys", "_line", "_mode", "_model", "_parsed_raw", "_pending", "_pending_size",
        "_provider", "_seen", "_start_raw", "_tried", "_usage", "_usage_key", "_usage_raw",
        "_usage_value", "_utf8",
    )

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._gemini = provider.lower().startswith("gemini")
        self._anthropic = provider == "anthropic"
        self._usage_key = b'"usageMetadata"' if self._gemini else b'"usage"'
        self._keys = (
            _GEMINI_KEYS if self._gemini else _ANTHROPIC_KEYS if self._anthropic else _OPENAI_KEYS
        )
        self._start_raw: bytes | None = None  # Anthropic's message_start: the input usage
        self._mode = ""  # "sse" | "array" | "json" | "off", chosen by the first byte
        self._line: list[bytes] = []  # pieces of the current, unfinished SSE line
        self._event = b""  # the SSE `event:` name of the event being read
        self._pending: list[tuple[bytes, bytes]] = []  # (event, payload) not yet inspected
        self._pending_size = 0
        self._usage_raw: bytes | None = None  # the last usage payload among inspected events
        self._parsed_raw: bytes | None = None  # the payload `_usage` was parsed from
        self._usage_value: dict[str, Any] | None = None  # JSON modes: the last usage element
        self._usage: Usage | None = None
        self._error_raw: bytes | None = None
        self._error: dict[str, Any] | None = None
        self._chars = 0
        self._model: str | None = None
        self._done = False
        self._seen = False  # an SSE event or a JSON value was read
        self._utf8: codecs.IncrementalDecoder | None = None  # made for JSON modes only
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
            if self._mode != "sse":
                self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
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
        if chunk.find(b"\n") < 0:  # bytes.find, not `in`: see _has_object
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
        for line in lines:  # inlined, with slices instead of startswith: the hot loop
            if not line:
                self._event = b""  # blank line: the event ends
            elif line[:5] == b"data:":
                end = -1 if line[-1:] == b"\r" else None
                self._payload(line[6:end] if line[5:6] == b" " else line[5:end])
            elif line == b"\r":
                self._event = b""
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
        self._seen = True
        if data == b"[DONE]":
            self._done = True
            return
        event = self._event
        if not event and data[:9] == b'{"type":"':  # Responses API without event lines
            event = data[9 : data.find(b'"', 9)]
        if event == b"response.completed" or event == b"message_stop":
            self._done = True
        elif event == b"message_start":
            self._start_raw = data
        self._pending.append((event, data))
        self._pending_size += len(data)
        if self._pending_size > _PENDING_LIMIT:
            self._inspect_pending()

    def _inspect_pending(self) -> None:
        for event, data in self._pending:
            self._inspect(event, data)
        self._pending.clear()
        self._pending_size = 0

    def _inspect(self, event: bytes, data: bytes) -> None:
        """Everything but the JSON parse, for one event: usage, error, model, text."""
        if _has_object(data, self._usage_key):
            self._usage_raw = data  # cumulative or final: the last one is the usage
        if event == b"error" or event == b"response.failed" or _has_object(data, b'"error"'):
            self._error_raw, self._error = data, None
        if self._model is None:
            found = _MODEL.search(data)
            if found:
                self._model = found.group(1).decode("utf-8", "replace")
        if self._gemini:
            keys = _GEMINI_TEXT
        elif self._anthropic:
            keys = _ANTHROPIC_TEXT
        elif event[:9] == b"response.":
            if event[-6:] != b".delta":
                return  # Responses API summaries repeat the text of the deltas
            keys = _RESPONSES_TEXT
        elif (
            data.find(b"reasoning") >= 0
            or data.find(b"arguments") >= 0
            or data.find(b'"refusal":"') >= 0
        ):
            keys = _OPENAI_TEXT
        else:
            keys = _CONTENT  # the common chunk: only `content` can carry text
        for key in keys:
            at = data.find(key)
            while at >= 0:
                at += len(key)
                found = _STRING_AFTER.match(data, at)
                if found:
                    self._chars += text_len(found.group(1))
                    at = found.end()
                at = data.find(key, at)

    def _feed_json(self, chunk: bytes) -> None:
        assert self._utf8 is not None
        text = self._utf8.decode(chunk)
        if not text:
            return
        self._array.append(text)
        self._json += len(text)
        if self._json > _ARRAY_LIMIT:
            self._mode = "off"  # a never-ending element: give up rather than hold it all
            self._array.clear()
            return
        # Parse when an element likely closed (Gemini pretty-prints: a top-level `}` starts a
        # line) or the held text doubled since the last failed try: O(n) either way.
        if self._mode == "array" and (
            "\n}" in text or self._json >= 2 * self._tried + 4096 or text[:1] == "}"
        ):
            self._scan(final=False)

    def _scan(self, *, final: bool) -> None:
        """Parse the complete JSON values held; keep the unfinished rest for later."""
        if final and self._utf8 is not None:
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
        self._seen = True
        if not isinstance(value, dict):
            return
        if "usageMetadata" in value or "usage" in value:
            self._usage_value = value  # cumulative: only the last is read, when asked
        if isinstance(value.get("error"), dict):
            self._error = value["error"]
        if self._model is None:
            model = value.get("modelVersion") or value.get("model")
            if isinstance(model, str):
                self._model = model
        self._chars += gemini_text(value) if self._gemini else walk_text(value, self._keys)

    # -- results ---------------------------------------------------------------------------

    def _sync(self) -> None:
        if self._mode in ("array", "json") and self._array:
            self._scan(final=False)

    def _last_usage_raw(self) -> bytes | None:
        key = self._usage_key
        for _event, data in reversed(self._pending):  # usually the last event or the one before
            if _has_object(data, key):
                return data
        return self._usage_raw

    @property
    def usage(self) -> Usage | None:
        """The usage the stream reported (the last report), or None if none came."""
        self._sync()
        if self._usage_value is not None:
            found = usage_from_json(self._provider, self._usage_value)
            self._usage_value = None
            if found is not None:
                self._usage = found
        raw = self._last_usage_raw()
        if raw is not None and raw is not self._parsed_raw:
            self._parsed_raw = raw
            try:
                value = json.loads(raw, parse_float=Decimal)
            except ValueError:
                return self._usage  # a malformed event: keep the usage read before it
            if self._anthropic and self._start_raw is not None and raw is not self._start_raw:
                value = _anthropic_total(self._start_raw, value)
            found = usage_from_json(self._provider, value)
            if found is not None and self._anthropic and raw is self._start_raw:
                # Only message_start came (the stream was cut): its output count is a
                # placeholder, so the output is estimated from the text that did arrive.
                streamed = estimate_tokens(self.output_chars)
                found = replace(found, output_tokens=max(found.output_tokens, streamed), estimated=True)
            if found is not None:
                self._usage = found
        return self._usage

    @property
    def output_chars(self) -> int:
        """Characters of output text (content, reasoning, tool arguments) seen in deltas.

        Costs a scan of the events not yet inspected: read it when the usage is missing."""
        self._sync()
        self._inspect_pending()
        return self._chars

    @property
    def structured(self) -> bool:
        """Whether the bytes held SSE events or JSON values, so `output_chars` measures the
        reply's text; False for audio, plain text and other answers it cannot read."""
        self._sync()
        return self._seen

    @property
    def model(self) -> str | None:
        """The model name as the provider reported it (e.g. a dated name)."""
        self._sync()
        if self._model is None:
            self._inspect_pending()
        return self._model

    @property
    def done(self) -> bool:
        """Whether the stream's end marker (`[DONE]`, `response.completed`, `message_stop`,
        the array's `]`) arrived. Gemini's alt=sse stream has no end marker, so it stays False there."""
        self._sync()
        return self._done

    @property
    def error(self) -> dict[str, Any] | None:
        """The provider's error object, when the stream carried one."""
        self._sync()
        self._inspect_pending()
        if self._error is None and self._error_raw is not None:
            try:
                value = json.loads(self._error_raw, parse_float=Decimal)
            except ValueError:
                return {"message": self._error_raw.decode("utf-8", "replace")[:500]}
            self._error = error_of(value)
        return self._error


def _anthropic_total(start: bytes, delta: Any) -> Any:
    """A `message_delta`'s usage completed with the input counts of `message_start` (a delta
    carries the running output; newer deltas repeat input counts, which then win)."""
    try:
        begun = json.loads(start, parse_float=Decimal)
    except ValueError:
        return delta
    message = begun.get("message") if isinstance(begun, dict) else None
    first = message.get("usage") if isinstance(message, dict) else None
    last = delta.get("usage") if isinstance(delta, dict) else None
    if not isinstance(first, dict) or not isinstance(last, dict):
        return delta
    return {"usage": {**first, **{k: v for k, v in last.items() if v is not None}}}


def _has_object(data: bytes, key: bytes) -> bool:
    """Whether `key` appears as an object's key with an object value (`"usage": {`).

    Substring tests here use bytes.find: on CPython `sub in some_bytes` first tries `sub` as an
    int, raising and clearing a TypeError each time — several times the cost of the search."""
    at = data.find(key)
    while at >= 0:
        at += len(key)
        if _OBJECT_AFTER.match(data, at):
            return True
        at = data.find(key, at)
    return False
