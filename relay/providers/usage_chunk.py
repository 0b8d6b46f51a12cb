"""The usage-only chunk of an OpenAI-style chat stream, kept from a client that did not ask for it.

To price a streamed chat the relay asks for `stream_options.include_usage`; the provider then ends
the stream with a chunk whose `choices` is empty and which carries `usage`. A client that did not
ask for it does not expect it: the most common loop, `chunk.choices[0].delta.content`, fails on it
(IndexError in Python, TypeError in JavaScript). The relay reads that chunk (the usage reader sees
every upstream byte) and this filter leaves it out of what the client gets.

Every other byte passes unchanged. The filter holds back only an event whose blank line has not
arrived yet, so the client gets whole events, each as soon as it is complete.
"""

from __future__ import annotations

import json
import re

_EMPTY_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')
_EVENTS = re.compile(rb".*?\n\r?\n|.+", re.DOTALL)  # events, each with its blank line


class UsageChunkFilter:
    """Feed it the upstream chunks; send on what it returns; call `close()` at the end."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk if self._held else chunk
        lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\n\r\n")
        end = max(lf + 2 if lf >= 0 else 0, crlf + 3 if crlf >= 0 else 0)  # after the last event
        self._held = data[end:]
        return _without_usage_chunk(data[:end])

    def close(self) -> bytes:
        """What is still held: a last event that never got its blank line."""
        rest, self._held = self._held, b""
        return _without_usage_chunk(rest)


def _without_usage_chunk(data: bytes) -> bytes:
    if not _EMPTY_CHOICES.search(data):  # the cheap test first: most chunks have choices
        return data
    return b"".join(event for event in _EVENTS.findall(data) if not _is_usage_chunk(event))


def _is_usage_chunk(event: bytes) -> bool:
    lines = event.replace(b"\r\n", b"\n").split(b"\n")
    payload = b"\n".join(line[5:].lstrip(b" ") for line in lines if line.startswith(b"data:"))
    if not _EMPTY_CHOICES.search(payload):
        return False
    try:
        chunk = json.loads(payload)
    except ValueError:
        return False
    return isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)
