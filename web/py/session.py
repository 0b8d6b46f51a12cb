"""The signed-in user's profile as pages keep it: localStorage["aipipe"] holds JSON
{"token", "email", "name"?, "picture"?} — the same shape aipipe.js reads and writes.
Runs under CPython and MicroPython.
"""

import json

STORAGE_KEY = "aipipe"
FIELDS = ("token", "email", "name", "picture")


def profile_from(data):
    """A dict (from /token, /dev-login or storage) -> a clean profile, or None if unusable."""
    if not isinstance(data, dict):
        return None
    token, email = data.get("token"), data.get("email")
    if not isinstance(token, str) or not token or not isinstance(email, str) or "@" not in email:
        return None
    profile = {}
    for key in FIELDS:
        value = data.get(key)
        if isinstance(value, str) and value:
            profile[key] = value
    return profile


def load(raw):
    """The stored text (or None) -> a profile, or None when absent or corrupt."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return profile_from(data)


def dump(profile) -> str:
    return json.dumps({k: profile[k] for k in FIELDS if k in profile})


def greeting(profile) -> str:
    name = profile.get("name")
    email = profile.get("email", "")
    return f"Signed in as {name} ({email})" if name else f"Signed in as {email}"


def error_message(status: int, data) -> str:
    """The relay's JSON error envelope (or anything else) -> one line for the page."""
    message = None
    if isinstance(data, dict):
        message = data.get("message")
        error = data.get("error")
        if not message and isinstance(error, dict):
            message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"the server answered HTTP {status}"
    return message
