"""aipipe: call LLMs through AI Pipe from Python, paid from your AI Pipe budget.

In the scratchpad this module is ready to import: it already holds your token and this relay's
address, and each call goes to the same endpoints as any other client, so it is budgeted and
recorded like any other.

    import aipipe
    print(aipipe.chat("Say hello in French"))
    for piece in aipipe.stream("Count to five"):
        print(piece, end="")
    aipipe.usage()   # {"cost": ..., "limit": ..., "remaining": ...}  (USD)
    aipipe.models()  # ["aipipe-demo"] or the OpenAI models this relay can use

`model=None` means `aipipe.model` (this relay's default). A model name with a "/"
("anthropic/claude-sonnet-4") goes to OpenRouter, a "claude-..." name to Anthropic's Messages
API (where the relay has its key; max_tokens defaults to 4096 there, as Anthropic requires one),
any other to OpenAI. Extra keyword arguments (temperature=0.2, max_tokens=50, ...) go into the
request as they are; `system="..."` adds a system message; a list of {"role", "content"}
messages may stand in for the prompt.

The HTTP transport is injected (`configure(http=...)`): the scratchpad's uses the browser's
fetch inside Pyodide; the tests use a plain HTTP client against a real relay.
"""

import json
from decimal import Decimal, InvalidOperation

token = ""
base_url = ""
model = ""  # the default for chat() and stream()
calls = []  # one dict per model call made: {"model", "cost" (Decimal or None), "source"}
http = None

CHAT_PATHS = {"openai": "/openai/v1/chat/completions",
              "openrouter": "/openrouter/v1/chat/completions",
              "anthropic": "/anthropic/v1/messages"}
ANTHROPIC_VERSION = "2023-06-01"  # the Messages API wants this header on every call
CLAUDE_MAX_TOKENS = 4096  # Anthropic requires max_tokens; the relay lowers it to what you can pay
COST_COMMENT = ": aipipe "  # the relay's last line on a stream: its cost (docs/costing.md)


class AIPipeError(Exception):
    """The relay (or the provider behind it) refused a call: `status` is the HTTP status,
    `data` the parsed error body when there was one."""

    def __init__(self, status, message, data=None):
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.data = data


def configure(token=None, base_url=None, model=None, http=None) -> None:
    """Set what the module-level functions use (the scratchpad does this before each run)."""
    module = globals()
    for name, value in (("token", token), ("base_url", base_url), ("model", model),
                        ("http", http)):
        if value is not None:
            module[name] = value.rstrip("/") if name == "base_url" else value


def chat(prompt, model=None, **params) -> str:
    """One reply, as text."""
    name, provider, body = _request(prompt, model, params, stream=False)
    status, headers, text = _http().request("POST", base_url + CHAT_PATHS[provider],
                                            _auth(provider), json.dumps(body))
    data = _json(status, text)
    _record(name, headers.get("x-aipipe-cost"), headers.get("x-aipipe-cost-source"))
    try:
        if provider == "anthropic":  # a list of content blocks; the text is in the text blocks
            content = "".join(block["text"] for block in data["content"]
                              if block.get("type") == "text")
        else:
            content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise AIPipeError(status, "the answer had no message: " + text[:300], data) from None
    return content or ""


def stream(prompt, model=None, **params):
    """The reply as it is written: an iterator of text pieces."""
    name, provider, body = _request(prompt, model, params, stream=True)
    status, _, chunks = _http().stream("POST", base_url + CHAT_PATHS[provider], _auth(provider),
                                       json.dumps(body))
    if status != 200:
        _json(status, "".join(chunks))  # raises with the relay's message
    finished = False
    try:
        for data in _events(chunks):
            if data.startswith(COST_COMMENT):
                info = _loads(data[len(COST_COMMENT):]) or {}
                _record(name, info.get("cost"), info.get("cost_source"))
                finished = True
                continue
            if data == "[DONE]":
                continue
            chunk = _loads(data)
            if not isinstance(chunk, dict):
                continue
            # OpenRouter and Anthropic report errors mid-stream (Anthropic: an `error` event).
            if isinstance(chunk.get("error"), dict):
                raise AIPipeError(status, chunk["error"].get("message") or "stream error", chunk)
            if chunk.get("type") == "content_block_delta":  # Anthropic's text arrives in these
                delta = chunk.get("delta")
                if isinstance(delta, dict) and delta.get("type") == "text_delta" and \
                        delta.get("text"):
                    yield delta["text"]
                continue
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                piece = delta.get("content") if isinstance(delta, dict) else None
                if piece:
                    yield piece
    finally:
        if not finished:  # stopped early or broken: the relay records its own estimate
            calls.append({"model": name, "cost": None, "source": "cut short"})
        close = getattr(chunks, "close", None)
        if close:
            close()


def usage() -> dict:
    """Your spend against your budget: {"email", "days", "cost", "limit", "remaining", ...}."""
    status, _, text = _http().request("GET", base_url + "/usage", _auth(), None)
    return _json(status, text)


def models(provider="openai") -> list:
    """The model names this relay can call for you ("openai", "openrouter" or "anthropic")."""
    status, _, text = _http().request("GET", base_url + "/" + provider + "/v1/models",
                                      _auth(provider), None)
    data = _json(status, text)
    return sorted(item["id"] for item in data.get("data") or [] if isinstance(item, dict))


def spent(since=0):
    """(total cost as Decimal, number of calls, number whose cost is unknown) of calls[since:]."""
    made = calls[since:]
    known = [c["cost"] for c in made if c["cost"] is not None]
    return sum(known, Decimal(0)), len(made), len(made) - len(known)


# -- helpers ---------------------------------------------------------------------------------
def _http():
    if http is None or not base_url:
        raise AIPipeError(0, "aipipe is not configured: call aipipe.configure(token=..., "
                             "base_url=..., http=...) first")
    return http


def _auth(provider="openai") -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    if provider == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    return headers


def provider_of(name) -> str:
    """Where a model name goes: "openrouter" (a "/" in it), "anthropic" (claude-...), "openai"."""
    if "/" in name:
        return "openrouter"
    return "anthropic" if name.startswith("claude-") else "openai"


def _request(prompt, model_name, params, stream):
    name = model_name or model
    if not name:
        raise AIPipeError(0, "no model: pass model=... (see aipipe.models())")
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, (list, tuple)) and all(isinstance(m, dict) for m in prompt):
        messages = list(prompt)
    else:
        raise TypeError("prompt must be a string or a list of {'role', 'content'} dicts")
    system = params.pop("system", None)
    if system:
        messages.insert(0, {"role": "system", "content": system})
    provider = provider_of(name)
    if provider == "anthropic":  # no system role in the Messages API: a top-level `system`
        said = [m.get("content") for m in messages if m.get("role") == "system"]
        messages = [m for m in messages if m.get("role") != "system"]
        params.setdefault("max_tokens", CLAUDE_MAX_TOKENS)
        if said:
            params["system"] = "\n\n".join(str(text) for text in said)
    body = {"model": name, "messages": messages, **params}
    if stream:
        body["stream"] = True
    return name, provider, body


def _loads(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json(status, text):
    """The parsed answer, or AIPipeError with the relay's message for any status but 200."""
    data = _loads(text) if text else None
    if status == 200 and data is not None:
        return data
    message = None
    if isinstance(data, dict):
        error = data.get("error")
        message = data.get("message") or (error.get("message") if isinstance(error, dict)
                                          else error)
    raise AIPipeError(status, str(message or (text or "")[:300] or "no answer"), data)


def _record(name, cost, source) -> None:
    try:
        amount = Decimal(cost) if cost is not None else None
    except (InvalidOperation, TypeError, ValueError):
        amount = None
    calls.append({"model": name, "cost": amount, "source": source or "unknown"})


def _events(chunks):
    """Server-Sent Events from text pieces: each event's data, and the relay's `: aipipe {...}`
    comment (passed on as it is; other comments are dropped)."""
    buffer, data = "", []
    for chunk in chunks:
        buffer += chunk
        lines = buffer.replace("\r\n", "\n").split("\n")
        buffer = lines.pop()
        for line in lines:
            if line.startswith(COST_COMMENT):
                yield line
            elif line.startswith("data:"):
                data.append(line[6:] if line.startswith("data: ") else line[5:])
            elif not line and data:
                yield "\n".join(data)
                data = []
    if data:
        yield "\n".join(data)
