"""The /login?redirect= hand-off: who may receive the token, and the URL that carries it.

The browser's own URL parser gives us the target's protocol, origin and href (so the origin we
judge is exactly where the browser will go); this module only decides and builds. The token
travels in the fragment, which browsers never send to servers, so it stays out of server logs.
Runs under CPython and MicroPython.
"""

SAME = "same"  # the relay's own origin: hand over at once
ALLOWED = "allowed"  # an origin the operator lists in AIPIPE_ALLOWED_ORIGINS: at once
ASK = "ask"  # any other web origin: only after the user approves on the page
INVALID = "invalid"  # not an http(s) URL (javascript:, data:, garbage): never

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def normalize_origin(origin: str) -> str:
    """"HTTPS://Example.COM:443/" -> "https://example.com" (the form browsers report)."""
    origin = (origin or "").strip().rstrip("/").lower()
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if origin.startswith(scheme) and origin.endswith(port):
            origin = origin[: -len(port)]
    return origin


def decide(protocol: str, origin: str, own_origin: str, allowed_origins) -> str:
    """Where a hand-off to a target (as parsed by the browser) may go without asking."""
    if protocol not in ("http:", "https:"):
        return INVALID
    origin = normalize_origin(origin)
    if not origin or origin == "null":
        return INVALID
    if origin == normalize_origin(own_origin):
        return SAME
    if origin in [normalize_origin(o) for o in allowed_origins or ()]:
        return ALLOWED
    return ASK


def quote(text: str) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (like encodeURIComponent)."""
    out = []
    for ch in str(text):
        if ch in _UNRESERVED:
            out.append(ch)
        else:
            for byte in ch.encode("utf-8"):
                out.append(f"%{byte:02X}")
    return "".join(out)


def fragment_params(profile) -> str:
    """The aipipe_* parameters for a profile: token and email, plus name/picture when known."""
    parts = []
    for key in ("token", "email", "name", "picture"):
        value = profile.get(key)
        if value:
            parts.append(f"aipipe_{key}={quote(value)}")
    return "&".join(parts)


def handoff_url(href: str, profile) -> str:
    """The target URL with the profile appended to its fragment (an existing fragment is kept,
    so single-page apps keep their route; aipipe.js removes only the aipipe_* parts)."""
    params = fragment_params(profile)
    if "#" not in href:
        return href + "#" + params
    if href.endswith("#") or href.endswith("&"):
        return href + params
    return href + "&" + params


def approval_message(origin: str) -> str:
    return f"{normalize_origin(origin)} wants to use your AI Pipe token"
