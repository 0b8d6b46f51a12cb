"""What a client request asks for, read once and strictly: the `Call` the proxy carries, and the
request-side rules (paths, JSON, model, output limits, multipart uploads)."""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from relay.clock import utc_now
from relay.costing.cost import estimate_tokens
from relay.costing.usage import audio_seconds, request_text_chars
from relay.errors import BadRequest, PayloadTooLarge
from relay.forward.thinking import cap_thinking, worst_output
from relay.providers.registry import (
    PRICED_VALUES,
    UNBOUNDED_FIELDS,
    Endpoint,
    Provider,
    output_cap,
)

MAX_MODEL_CHARS = 256  # model names are short; a huge one would only bloat the ledger and logs
_JSON_KINDS = ("embeddings", "speech")  # read as JSON (besides the kinds that write tokens)


@dataclass(slots=True)
class Call:
    """One client request on its way through the relay."""

    provider: Provider
    endpoint: Endpoint
    path: str
    email: str
    model: str
    stream: bool
    body: bytes
    json: dict[str, Any] | None
    input_tokens: int
    origin: str
    started: float = field(default_factory=time.perf_counter)
    ts: Any = field(default_factory=utc_now)
    id: str = field(default_factory=lambda: f"{random.getrandbits(128):032x}")  # uuid4 costs a syscall
    upload_seconds: Decimal | None = None  # transcription: the uploaded audio's playing time
    usage_chunk_hidden: bool = False  # the relay asked for the stream's usage chunk, not the client


def describe(
    request: Request,
    provider: Provider,
    endpoint: Endpoint,
    path: str,
    body: bytes,
    email: str,
) -> Call:
    """Read what a client request asks for: its JSON (strictly), model, streaming, upload."""
    data: dict[str, Any] | None = None
    ctype = request.headers.get("content-type", "")
    if body and "json" in ctype.lower():
        try:
            parsed = json.loads(body, object_pairs_hook=unique_keys)
        except RecursionError as e:
            raise BadRequest("Request body is nested too deeply", code="invalid_json") from e
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"Request body is not valid JSON: {e}", code="invalid_json") from e
        if not isinstance(parsed, dict):
            raise BadRequest("Request body must be a JSON object", code="invalid_json")
        data = parsed
    model = endpoint.model or ""
    stream = endpoint.stream
    if data is not None and provider.model_in_body:
        raw_model = data.get("model", "")
        if not isinstance(raw_model, str) or len(raw_model) > MAX_MODEL_CHARS:
            raise BadRequest(
                f"'model' must be a string of at most {MAX_MODEL_CHARS} characters",
                code="invalid_model",
            )
        model = raw_model
        stream = data.get("stream") is True
    if data is None and (output_cap(provider, endpoint) or endpoint.kind in _JSON_KINDS):
        # Unread, its output limits could not be read or capped.
        raise BadRequest(
            "Send the request body as JSON (Content-Type: application/json)", code="invalid_json"
        )
    if data is not None:
        refuse_unbounded(endpoint, data)
    upload_seconds = None
    if endpoint.kind == "transcription" and data is None:
        parts = multipart_parts(body, ctype)
        model = parts.get("model", b"").decode("utf-8", "replace").strip()[:MAX_MODEL_CHARS]
        stream = parts.get("stream", b"").strip().lower() == b"true"
        upload_seconds = audio_seconds(parts.get("file", b""))
    # Prompt text and tool definitions only: base64 media in a JSON body would inflate the
    # estimate many times.
    text_size = request_text_chars(data) + tool_chars(data) if data is not None else 0
    call = Call(
        provider=provider,
        endpoint=endpoint,
        path=path,
        email=email,
        model=model,
        stream=stream,
        body=body,
        json=data,
        input_tokens=estimate_tokens(text_size),
        origin=request.headers.get("origin", "")[:200],
        upload_seconds=upload_seconds,
    )
    spec = output_cap(provider, endpoint)
    if spec is not None and spec.required:
        max_output(call)  # a missing or malformed maximum is refused before the budget is asked
    return call


def tool_chars(data: dict[str, Any]) -> int:
    """Characters of the tool definitions a request sends (`tools`, as JSON): the provider puts
    them in the prompt, and an agent's (Claude Code's ~30,000 characters) outweigh its text."""
    tools = data.get("tools")
    return len(json.dumps(tools)) if isinstance(tools, list) and tools else 0


def refuse_unbounded(endpoint: Endpoint, data: dict[str, Any]) -> None:
    """Refuse (400) request fields that make a call's cost unknowable or dearer than priced."""
    for name in UNBOUNDED_FIELDS.get(endpoint.kind, ()):
        if data.get(name) not in (None, False):
            raise BadRequest(
                f"'{name}' is not supported through AI Pipe: the call would go on running after "
                "its answer, so its cost could not be known or budgeted",
                code="unbounded_request",
            )
    for name, priced in PRICED_VALUES.get(endpoint.kind, {}).items():
        value = data.get(name)
        if value is not None and value not in priced:
            raise BadRequest(
                f"'{name}': {json.dumps(value)[:40]} is billed above this relay's prices, so the "
                f"call could not be budgeted; leave '{name}' out (or send "
                f"{' or '.join(json.dumps(v) for v in priced)})",
                code="unpriced_option",
            )


_PATH_ODD = frozenset("?#\\") | {chr(c) for c in range(32)} | {"\x7f"}


def checked_path(path: str) -> str:
    """The decoded path under a provider. `.`/`..` segments (also sent as %2e) would climb out
    of the provider's base URL once joined to it, and an encoded `?` or `#` would smuggle a
    query or cut the path, so such paths are refused rather than normalised."""
    if any(seg in (".", "..") for seg in path.split("/")) or not _PATH_ODD.isdisjoint(path):
        raise BadRequest(
            "Path must not contain '.' or '..' segments, encoded '?' or '#', backslashes or "
            "control characters",
            code="invalid_path",
        )
    return path


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a repeated key are refused: we and the provider might read different
    values of it (e.g. the model we price and the model it runs)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise BadRequest("Request body repeats a key in one object", code="invalid_json")
    return out


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit // (1024 * 1024)} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def output_section(call: Call, *, create: bool = False) -> dict[str, Any] | None:
    """The object of the body that holds the call's output limits (the body itself, or e.g.
    Gemini's generationConfig in whichever spelling the request used), or None when the
    endpoint writes no tokens. With `create`, a missing section is added in its first spelling."""
    cap = output_cap(call.provider, call.endpoint)
    if cap is None or call.json is None:
        return None
    if not cap.section:
        return call.json
    present = [name for name in cap.section if name in call.json]
    if len(present) > 1:
        raise BadRequest(
            f"Send one of {' or '.join(present)}, not both", code="invalid_generation_config"
        )
    if not present:
        if not create:
            return {}
        present = [cap.section[0]]
        call.json[present[0]] = {}
    section = call.json[present[0]]
    if not isinstance(section, dict):
        raise BadRequest(f"{present[0]} must be an object", code="invalid_generation_config")
    return section


def max_output(call: Call) -> int | None:
    """The largest reply the request asks for, reading every spelling the provider accepts;
    None when it names none."""
    cap = output_cap(call.provider, call.endpoint)
    section = output_section(call)
    if cap is None or section is None:
        return None
    present = [section[f] for f in cap.fields if section.get(f) is not None]
    if not present:
        if cap.required:  # Anthropic refuses it too; the relay will not invent a maximum
            raise BadRequest(
                f"{cap.write} is required: name the largest reply you want", code="invalid_max_tokens"
            )
        return None
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in present):
        raise BadRequest("max tokens must be a positive whole number", code="invalid_max_tokens")
    largest = max(present)  # several limits given: reserve for the largest, whichever applies
    return worst_output(section, largest) if cap.thinking else largest


def choices(call: Call) -> int:
    """How many replies one call asks for (OpenAI `n`, `best_of`; Gemini `candidateCount`)."""
    cap = output_cap(call.provider, call.endpoint)
    section = output_section(call)
    if cap is not None and section is not None:
        values = [section.get(f) for f in cap.replies]
    elif call.json is not None and call.provider.openai_style:
        values = [call.json.get("n")]  # images
    else:
        values = []
    present = [v for v in values if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 128 for v in present):
        raise BadRequest("n must be a whole number from 1 to 128", code="invalid_n")
    return max(present, default=1)


def set_max_output(call: Call, cap: int) -> None:
    """Make `cap` the reply's maximum in `call.json`: in every spelling the request used, else
    in the one the provider documents. The caller encodes the body again (once, after all its
    changes)."""
    spec = output_cap(call.provider, call.endpoint)
    section = output_section(call, create=True)
    assert spec is not None and section is not None
    present = [f for f in spec.fields if section.get(f) is not None]
    if spec.thinking:  # max_tokens is required, so present (and checked by max_output)
        cap_thinking(section, section[spec.write], cap)
        return
    for name in present or [spec.write]:
        section[name] = cap


def ask_for_stream_usage(call: Call) -> None:
    data = call.json
    assert data is not None
    if call.endpoint.kind in ("chat", "completions"):
        options = data.get("stream_options")
        if not isinstance(options, dict) or options.get("include_usage") is not True:
            data["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            call.body = json.dumps(data).encode()
            call.usage_chunk_hidden = True  # read it for the cost; the client never sees it


_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)


_PART_NAME = re.compile(rb'content-disposition:[^\r\n]*?\bname="([^"]*)"', re.IGNORECASE)


def multipart_parts(body: bytes, content_type: str) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by field name (the first of each name), split
    on the boundary the content type names — as the provider splits it, so bytes inside an
    uploaded file that look like a field (`name="model"`) are never taken for one."""
    found = _BOUNDARY.search(content_type)
    if not found:
        return {}
    delimiter = b"\r\n--" + found.group(1).encode("latin-1")
    parts: dict[str, bytes] = {}
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head_end = chunk.find(b"\r\n\r\n")
        if head_end < 0:
            continue
        name = _PART_NAME.search(chunk, 0, head_end)
        if name:
            parts.setdefault(name.group(1).decode("utf-8", "replace"), chunk[head_end + 4 :])
    return parts
