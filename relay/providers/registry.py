"""Providers as data: where each lives, how its key is sent, how its requests are read.

Adding a provider adds an entry here, not an `elif` in the proxy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Provider:
    route: str  # first path segment clients use
    name: str  # the ledger's `provider`, and the key of settings.provider_keys / provider_bases
    key_var: str  # environment variable with the operator's key
    base_var: str  # environment variable that overrides the upstream base URL
    public_base: str  # the provider's own base URL
    auth_header: str  # header that carries the operator's key upstream
    auth_prefix: str  # e.g. "Bearer "
    priced_by_table: bool  # OpenAI/Gemini: our price file; OpenRouter: the provider reports cost
    openai_style: bool  # request bodies and usage in OpenAI's shapes
    key_in_query: bool = False  # Google SDKs may send the key (our token) as `?key=`
    # The path starts with the API version (`/gemini/v1beta/models/...`, as google-genai sends
    # it): the upstream root is the base URL without its own trailing version segment.
    version_in_path: bool = False
    # POST paths and what they are (costing kinds); None: Gemini's `/models/<m>:<action>` paths.
    kinds: Mapping[str, str] | None = None
    models_path: str = "/v1/models"  # the free model list (and `<models_path>/<id>`)
    model_in_body: bool = True  # the JSON body names the model and `stream` (not Gemini's path)
    # Streams in the provider's SSE shape get the relay's `: aipipe {cost}` comment at the end.
    cost_comment: bool = False
    # The SSE event name the provider's streams report errors under (Anthropic: `error`); the
    # relay's own mid-stream error then goes out in the provider's error shape, which its SDKs
    # raise. "": a bare `data: {"error": ...}` event, as OpenAI-style streams carry errors.
    error_event: str = ""


_OPENAI_KINDS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
    "/v1/images/generations": "images",
    "/v1/images/edits": "images",
    "/v1/images/variations": "images",
    "/v1/audio/speech": "speech",
    "/v1/audio/transcriptions": "transcription",
    "/v1/audio/translations": "transcription",
    "/v1/moderations": "free",
}
# Anthropic: Messages and their token count. Message Batches, Files, skills and the legacy
# Text Completions are not here: deferred, stored on the operator's account, or unpriced.
_ANTHROPIC_KINDS = {
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "free",
}

PROVIDERS: dict[str, Provider] = {
    p.route: p
    for p in (
        Provider("openai", "openai", "OPENAI_API_KEY", "AIPIPE_OPENAI_BASE", "https://api.openai.com",
                 "authorization", "Bearer ", priced_by_table=True, openai_style=True,
                 kinds=_OPENAI_KINDS, cost_comment=True),
        Provider("openrouter", "openrouter", "OPENROUTER_API_KEY", "AIPIPE_OPENROUTER_BASE",
                 "https://openrouter.ai/api", "authorization", "Bearer ",
                 priced_by_table=False, openai_style=True, kinds=_OPENAI_KINDS, cost_comment=True),
        Provider("geminiv1beta", "gemini", "GEMINI_API_KEY", "AIPIPE_GEMINI_BASE",
                 "https://generativelanguage.googleapis.com/v1beta", "x-goog-api-key", "",
                 priced_by_table=True, openai_style=False, key_in_query=True,
                 models_path="/models", model_in_body=False),
        Provider("gemini", "gemini", "GEMINI_API_KEY", "AIPIPE_GEMINI_BASE",
                 "https://generativelanguage.googleapis.com/v1beta", "x-goog-api-key", "",
                 priced_by_table=True, openai_style=False, key_in_query=True,
                 version_in_path=True, models_path="/models", model_in_body=False),
        Provider("anthropic", "anthropic", "ANTHROPIC_API_KEY", "AIPIPE_ANTHROPIC_BASE",
                 "https://api.anthropic.com", "x-api-key", "", priced_by_table=True,
                 openai_style=False, kinds=_ANTHROPIC_KINDS, cost_comment=True,
                 error_event="error"),
    )
}
# One entry per provider name (several routes may reach one provider): the first route's.
BY_NAME: dict[str, Provider] = {}
for _p in PROVIDERS.values():
    BY_NAME.setdefault(_p.name, _p)

_VERSION = r"/v\d+(?:alpha|beta)?\d*"  # /v1, /v1beta, /v1alpha2
_TRAILING_VERSION = re.compile(_VERSION + "$")
_LEADING_VERSION = re.compile(_VERSION + "(?=/|$)")


def upstream_base(provider: Provider, base: str) -> str:
    """What a path under `provider` is joined to: its base URL, or for a route that carries the
    API version in its path, that base without its trailing version segment
    (`http://h/gem/v1beta` -> `http://h/gem`)."""
    return _TRAILING_VERSION.sub("", base) if provider.version_in_path else base


def split_version(provider: Provider, path: str) -> tuple[str, str]:
    """`/v1beta/models/m:x` -> ("/v1beta", "/models/m:x") for a route that carries the version;
    ("", path) otherwise, or when the path does not start with a version."""
    found = _LEADING_VERSION.match(path) if provider.version_in_path else None
    return (path[: found.end()], path[found.end() :]) if found else ("", path)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a path under a provider is, for costing."""

    kind: str  # chat | completions | responses | embeddings | images | speech | transcription
    #            | generate | messages | free | unknown
    model: str | None = None  # from the path (Gemini)
    stream: bool = False  # from the path (Gemini streamGenerateContent)


@dataclass(frozen=True, slots=True)
class OutputCap:
    """Where a request body names the largest reply it wants and how many replies, in every
    spelling the provider accepts. The relay reads them all (the largest counts), and caps a
    reply by writing the cap into each spelling present, else into `write`."""

    fields: tuple[str, ...]  # the output maximum, every accepted spelling
    write: str  # the spelling written when the request names none
    replies: tuple[str, ...] = ()  # fields that multiply the replies (n, candidateCount)
    # The object holding those fields, in each accepted spelling; () for the body itself.
    section: tuple[str, ...] = ()
    default: int | None = None  # the provider's own maximum when the request names none
    # The provider refuses a request that names no maximum (Anthropic's `max_tokens`): so does
    # the relay, rather than send a cap the client never asked for (see call.describe).
    required: bool = False
    # Anthropic's extended thinking: `thinking.budget_tokens` is output too, below the maximum
    # (or, with interleaved thinking, possibly above it); see relay/forward/thinking.py.
    thinking: bool = False


# Chat reads max_completion_tokens or the older max_tokens; max_output_tokens is read too,
# because OpenAI-compatible servers behind the same route may take it.
_CHAT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_OPENAI_CHAT = OutputCap(_CHAT_FIELDS, "max_completion_tokens", ("n", "best_of"))
_RESPONSES = OutputCap(("max_output_tokens",), "max_output_tokens")
# Which field carries the output cap, per provider and endpoint kind. Adding a provider (or an
# endpoint) whose calls write tokens adds an entry here.
OUTPUT_CAPS: dict[tuple[str, str], OutputCap] = {
    ("openai", "chat"): _OPENAI_CHAT,
    ("openai", "completions"): OutputCap(("max_tokens",), "max_tokens", ("n", "best_of"),
                                         default=16),
    ("openai", "responses"): _RESPONSES,
    ("openrouter", "chat"): OutputCap(_CHAT_FIELDS, "max_tokens", ("n", "best_of")),
    ("openrouter", "completions"): OutputCap(("max_tokens",), "max_tokens", ("n", "best_of")),
    ("openrouter", "responses"): _RESPONSES,
    # Google's JSON reads both lowerCamelCase and the proto's snake_case names.
    ("gemini", "generate"): OutputCap(("maxOutputTokens", "max_output_tokens"), "maxOutputTokens",
                                      ("candidateCount", "candidate_count"),
                                      section=("generationConfig", "generation_config")),
    ("anthropic", "messages"): OutputCap(("max_tokens",), "max_tokens", required=True,
                                         thinking=True),
}

# Request fields that make a call's cost unknowable when it is answered, per endpoint kind:
# such calls are refused for AI Pipe tokens. A background response is answered `queued` with
# no usage and then runs on the operator's key.
UNBOUNDED_FIELDS: dict[str, tuple[str, ...]] = {"responses": ("background",)}
# Request fields whose other values are billed above the price table, per endpoint kind, with
# the values it prices: such calls are refused for AI Pipe tokens. Anthropic's fast mode costs
# several times the standard price; US-only inference 1.1 times.
PRICED_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "messages": {"speed": ("standard",), "inference_geo": ("global",)},
}


def output_cap(provider: Provider, endpoint: Endpoint) -> OutputCap | None:
    return OUTPUT_CAPS.get((provider.name, endpoint.kind))


_GEMINI = re.compile(r"^/models/([^/:]+):([A-Za-z]+)$")
_GEMINI_KINDS = {
    "generateContent": "generate",
    "streamGenerateContent": "generate",
    "embedContent": "embeddings",
    "batchEmbedContents": "embeddings",
    "countTokens": "free",
}


def classify(provider: Provider, method: str, path: str) -> Endpoint:
    """`path` is the part after the provider segment, starting with '/'.

    Only model look-ups are free reads. Other reads and deletes (files, batches, stored
    responses) run on the operator's account, which all users share: one user could list, read
    or delete another's. So they are "unknown" and refused, like endpoints the relay cannot price.
    """
    version, path = split_version(provider, path)
    if provider.version_in_path and not version:
        return Endpoint("unknown")  # /gemini/models/...: which API version was meant?
    if method in ("GET", "HEAD"):
        models = provider.models_path
        bare = path.rstrip("/")
        if bare == models or (bare.startswith(models + "/") and ":" not in bare):
            return Endpoint("free")
        return Endpoint("unknown")
    if method != "POST":
        return Endpoint("unknown")
    if provider.kinds is not None:
        return Endpoint(provider.kinds.get(path.rstrip("/"), "unknown"))
    match = _GEMINI.match(path)
    if not match:
        return Endpoint("unknown")
    model, action = match.groups()
    return Endpoint(
        _GEMINI_KINDS.get(action, "unknown"), model=model, stream=action == "streamGenerateContent"
    )
