"""The playground's conversation: its state (kept in localStorage across reloads), the request
it sends, the streamed answer (Server-Sent Events) and what to tell the user when it fails.
Runs under CPython and MicroPython.
"""

import json

STORAGE_KEY = "aipipe-playground"
MAX_STORED_MESSAGES = 200  # localStorage holds ~5 MB per origin: keep the newest turns only
ROLES = ("user", "assistant")


def new_state() -> dict:
    return {"model": "", "system": "", "temperature": "", "max_tokens": "", "messages": []}


def load_state(raw) -> dict:
    """Stored text (or None) -> a clean state; anything corrupt falls back to a new one."""
    state = new_state()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return state
    for key in ("model", "system", "temperature", "max_tokens"):
        if isinstance(data.get(key), str):
            state[key] = data[key]
    messages = data.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if (isinstance(message, dict) and message.get("role") in ROLES
                and isinstance(message.get("content"), str)):
            meta = message.get("meta")
            state["messages"].append({"role": message["role"], "content": message["content"],
                                      "meta": meta if isinstance(meta, dict) else {}})
    return state


def dump_state(state) -> str:
    kept = dict(state)
    kept["messages"] = state["messages"][-MAX_STORED_MESSAGES:]
    return json.dumps(kept)


def parse_settings(temperature, max_tokens):
    """The form's text -> (temperature float or None, max tokens int or None, error or None).
    Blank means "the model's default" and is not sent."""
    temp, limit = None, None
    text = str(temperature or "").strip()
    if text:
        try:
            temp = float(text)
        except ValueError:
            return None, None, "Temperature must be a number from 0 to 2."
        if not 0 <= temp <= 2:
            return None, None, "Temperature must be a number from 0 to 2."
    text = str(max_tokens or "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            return None, None, "Max tokens must be a whole number of at least 1."
        limit = int(text)
    return temp, limit, None


def request_messages(state, prompt=None) -> list:
    """The messages sent: the system prompt, every earlier turn, then the new prompt."""
    messages = []
    if state.get("system", "").strip():
        messages.append({"role": "system", "content": state["system"]})
    for message in state["messages"]:
        if message["content"]:  # a reply stopped before any text is not a turn
            messages.append({"role": message["role"], "content": message["content"]})
    if prompt:
        messages.append({"role": "user", "content": prompt})
    return messages


def code_messages(state, prompt=None) -> list:
    """What "show code" shows: the request with the prompt being typed, else the request the
    last reply answered, else a sample prompt."""
    if prompt:
        return request_messages(state, prompt)
    earlier = dict(state)
    earlier["messages"] = list(state["messages"])
    while earlier["messages"] and earlier["messages"][-1]["role"] == "assistant":
        earlier["messages"].pop()
    if earlier["messages"]:
        return request_messages(earlier)
    return request_messages(state, "Hello!")


def request_body(provider, model_id, messages, temperature=None, max_tokens=None) -> list:
    """The chat-completions body as ordered (key, value) pairs (shown in "show code" in this
    order; MicroPython dicts do not keep order). OpenAI's newer models take
    `max_completion_tokens`; OpenRouter takes `max_tokens`."""
    body = [("model", model_id), ("messages", messages)]
    if temperature is not None:
        body.append(("temperature", temperature))
    if max_tokens is not None:
        body.append(("max_completion_tokens" if provider == "openai" else "max_tokens",
                     max_tokens))
    body.append(("stream", True))
    # The relay reads the stream's usage for itself; a client sees it only when it asks.
    body.append(("stream_options", {"include_usage": True}))
    return body


def body_json(pairs) -> str:
    return "{" + ", ".join(json.dumps(k) + ": " + json.dumps(v) for k, v in pairs) + "}"


class SSEParser:
    """Incremental Server-Sent Events: feed text as it arrives, get each complete event's data.
    Comments (": OPENROUTER PROCESSING") and event names are skipped; CRLF works."""

    def __init__(self):
        self.buffer = ""
        self.data = []

    def feed(self, text: str) -> list:
        self.buffer += text.replace("\r\n", "\n").replace("\r", "\n")
        events = []
        while "\n" in self.buffer:
            line, _, self.buffer = self.buffer.partition("\n")
            if line == "":
                if self.data:
                    events.append("\n".join(self.data))
                    self.data = []
            elif line.startswith("data:"):
                value = line[5:]
                self.data.append(value[1:] if value.startswith(" ") else value)
        return events


class Reply:
    """One assistant reply built from chat-completion chunks."""

    def __init__(self):
        self.text = ""
        self.usage = None
        self.finish = None
        self.error = None
        self.done = False

    def add(self, data: str) -> str:
        """Take one event's data; returns the text it added ("" for none)."""
        if data.strip() == "[DONE]":
            self.done = True
            return ""
        try:
            chunk = json.loads(data)
        except ValueError:
            return ""
        if not isinstance(chunk, dict):
            return ""
        if isinstance(chunk.get("error"), dict):  # OpenRouter reports mid-stream errors so
            self.error = chunk["error"].get("message") or "the provider reported an error"
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        added = ""
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                added += content
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        self.text += added
        return added


def error_code(data):
    error = data.get("error") if isinstance(data, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def advice(status: int, data, message: str) -> dict:
    """A failed request -> {"kind", "text", "href", "link"}: what happened and the next step."""
    if status == 429 and error_code(data) == "insufficient_quota":
        return {"kind": "budget",
                "text": "Your AI Pipe budget is used up (" + message + "). It frees up as older "
                        "days leave the budget window; the usage page shows when. For more, "
                        "ask the operator of this AI Pipe for a bigger budget.",
                "href": "/dashboard", "link": "See when your budget frees up"}
    if status == 401:
        return {"kind": "auth",
                "text": "Your AI Pipe sign-in has expired or was revoked (" + message + "). "
                        "Sign in again to get a new token; your conversation is kept.",
                "href": "/login?redirect=/playground", "link": "Sign in again"}
    if status == 429:
        return {"kind": "rate", "text": "The provider is busy (" + message + "). Wait a "
                "moment and send again.", "href": "", "link": ""}
    if status == 0:
        return {"kind": "network", "text": "Could not reach AI Pipe (" + message + "). Check "
                "your connection and send again.", "href": "", "link": ""}
    return {"kind": "other", "text": "The request failed (HTTP " + str(status) + "): " + message,
            "href": "", "link": ""}


def recorded_row(listing, model_id, started: str):
    """The ledger row (from /usage/requests) of a call to `model_id` made at or after
    `started` ("2026-01-31T12:34:56", UTC), or None."""
    rows = listing.get("data") if isinstance(listing, dict) else None
    for row in rows if isinstance(rows, list) else []:
        if (isinstance(row, dict) and row.get("model") == model_id
                and str(row.get("ts", "")) >= started):
            return row
    return None


def reply_meta(model_id, usage, cost_text, source, stopped=False) -> dict:
    """What is stored and shown under a reply."""
    return {"model": model_id, "usage": usage if isinstance(usage, dict) else None,
            "cost": cost_text, "source": source, "stopped": bool(stopped)}


def meta_parts(meta, tokens) -> list:
    """What the line under a reply shows, as (kind, text) pieces: model, tokens, cost, where the
    cost came from, and "stopped" for a reply cut short."""
    parts = [("model", meta.get("model") or "?")]
    if meta.get("usage"):
        part = str(tokens["input"]) + " in / " + str(tokens["output"]) + " out tokens"
        if tokens["reasoning"]:
            part += " (" + str(tokens["reasoning"]) + " reasoning)"
        if tokens["cached"]:
            part += ", " + str(tokens["cached"]) + " cached"
        parts.append(("tokens", part))
    parts.append(("cost", meta.get("cost") or "—"))
    source = meta.get("source")
    if source and source != "unknown":
        parts.append(("source", SOURCE_WORDS.get(source, source)))
    if meta.get("stopped"):
        parts.append(("stopped", "stopped"))
    return parts


def meta_text(meta, tokens) -> str:
    """"gpt-4o-mini · 12 in / 34 out tokens · $0.000012 (tokens × price)" as one line."""
    out = []
    for kind, text in meta_parts(meta, tokens):
        if kind == "source":
            out[-1] += " (" + text + ")"
        else:
            out.append(text)
    return " · ".join(out)


SOURCE_WORDS = {
    "reported": "reported by the provider",
    "computed": "tokens × price",
    "estimated": "estimated by the relay",
    "pending": "the relay records an estimate",
}
