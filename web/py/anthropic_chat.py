"""The playground's Anthropic side (Claude models, through `/anthropic/v1/messages`): the Messages
API request body, and one reply built from its stream's events.

The stream's `data:` payloads come from chat.SSEParser as for the other providers (each carries
its own `type`, so event names are not needed). `Reply` has chat.Reply's face (`text`, `usage`,
`finish`, `error`, `done`, `add`), and its `usage` is given in OpenAI's shape (`prompt_tokens`
counting cache reads and writes, `completion_tokens`, `prompt_tokens_details.cached_tokens`), so
catalog.usage_tokens and catalog.reply_cost read it unchanged.
The request needs the header `anthropic-version: 2023-06-01` besides the token.
Runs under CPython and MicroPython.
"""

import json

import chat

VERSION_HEADER = ("anthropic-version", "2023-06-01")
# Anthropic requires max_tokens; the relay lowers it to what the user's budget pays.
DEFAULT_MAX_TOKENS = 8192


def request_body(model_id, messages, max_tokens=None) -> list:
    """The Messages body as ordered (key, value) pairs, from chat-style messages: system
    messages become the top-level `system` (Anthropic has no system role). No temperature: the
    Messages API the anthropic SDK speaks today has no sampling parameters (its `stream()`
    refuses `temperature`), so the page does not offer one for Claude."""
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    turns = [{"role": m["role"], "content": m["content"]} for m in messages
             if m.get("role") in ("user", "assistant")]
    body = [("model", model_id), ("max_tokens", max_tokens or DEFAULT_MAX_TOKENS)]
    if system:
        body.append(("system", system))
    body.append(("messages", turns))
    body.append(("stream", True))
    return body


class Reply(chat.Reply):
    """One assistant reply built from Messages stream events."""

    def __init__(self):
        super().__init__()
        self._counts = {}

    def add(self, data: str) -> str:
        """Take one event's data; returns the text it added ("" for none)."""
        event = _object(data)
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            self._count(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            self._count(event.get("usage"))
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.finish = delta["stop_reason"]
        elif kind == "message_stop":
            self.done = True
        elif kind == "error" or isinstance(event.get("error"), dict):
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            self.error = error.get("message") or "the provider reported an error"
        elif kind == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                added = delta.get("text")
                if isinstance(added, str):
                    self.text += added
                    return added
        return ""

    def _count(self, usage) -> None:
        """message_start has the input (and a placeholder output); each message_delta the
        output so far: the last value of each count wins."""
        if not isinstance(usage, dict):
            return
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                    "cache_creation_input_tokens"):
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                self._counts[key] = value
        read = self._counts.get("cache_read_input_tokens", 0)
        written = self._counts.get("cache_creation_input_tokens", 0)
        self.usage = {
            "prompt_tokens": self._counts.get("input_tokens", 0) + read + written,
            "completion_tokens": self._counts.get("output_tokens", 0),
            "prompt_tokens_details": {"cached_tokens": read},
        }


def _object(data: str) -> dict:
    """An event's JSON object ({} for anything else)."""
    try:
        event = json.loads(data)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}
