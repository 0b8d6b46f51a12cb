"""/login: Google or dev sign-in, the token with snippets and spend, sign-out, and the
/login?redirect= hand-off (at once for this origin and allowed origins, after approval else)."""

import asyncio

import handoff
import js
import money
import pagekit as kit
import session
import snippets
from pyscript.ffi import create_proxy

SECTIONS = ("loading", "handoff", "handoff-status", "signin", "account")
GOOGLE_WAIT_SECONDS = 15

config = kit.config()
redirect = js.URLSearchParams.new(js.window.location.search).get("redirect")
state = {"profile": None, "google_ready": False}


def only(section) -> None:
    for name in SECTIONS:
        kit.show(name, name == section)


def redirect_target():
    """(href, origin, protocol) of ?redirect= as the browser parses it, or None."""
    if not redirect:
        return None
    try:
        url = js.URL.new(redirect, js.window.location.href)
    except Exception:  # JS TypeError: not a URL at all
        return ("", "null", "invalid:")
    return (str(url.href), str(url.origin), str(url.protocol))


# -- after sign-in -------------------------------------------------------------------------
def signed_in(profile, usage=None) -> None:
    state["profile"] = profile
    kit.show_who(profile)
    target = redirect_target()
    if target:
        href, origin, protocol = target
        decision = handoff.decide(protocol, origin, kit.origin(), config.get("allowed_origins"))
        if decision in (handoff.SAME, handoff.ALLOWED):
            send_token(href, origin, profile)
            return
        if decision == handoff.ASK:
            ask_approval(href, origin)
            return
        kit.set_text("signin-error", "")
    show_account(profile, usage)
    if target:  # invalid redirect: say so, never follow it
        kit.set_text("usage-summary", "")
        status(f"The address to return to ({redirect}) is not a web page, so your token was "
               "not sent.", keep_account=True)


def send_token(href, origin, profile) -> None:
    status(f"Returning to {handoff.normalize_origin(origin)}…")
    js.window.location.replace(handoff.handoff_url(href, profile))


def ask_approval(href, origin) -> None:
    kit.set_text("handoff-message", handoff.approval_message(origin))
    kit.set_text("handoff-origin", handoff.normalize_origin(origin))
    kit.set_text("handoff-target", href)
    kit.set_text("handoff-who", session.greeting(state["profile"]))
    state["pending"] = (href, origin)
    only("handoff")


def approve(_event) -> None:
    href, origin = state["pending"]
    send_token(href, origin, state["profile"])


def deny(_event) -> None:
    _href, origin = state["pending"]
    show_account(state["profile"])
    status(f"Your token was not shared with {handoff.normalize_origin(origin)}.",
           keep_account=True)


def switch_account(event) -> None:
    """Sign out here and sign in as someone else; the hand-off continues afterwards."""
    event.preventDefault()
    sign_out(event)


def status(text, keep_account=False) -> None:
    kit.set_text("handoff-status-text", text)
    if not keep_account:
        only("handoff-status")
    kit.show("handoff-status")


def show_account(profile, usage=None) -> None:
    only("account")
    kit.set_text("greeting", session.greeting(profile))
    kit.set_text("token", profile["token"])
    kit.hide("copy-status")
    examples = snippets.all_snippets(kit.origin(), profile["token"], config.get("demo_model"))
    kit.render_snippets("snippets", examples)
    if usage is not None:
        show_usage(usage)
    else:
        kit.spawn(refresh_usage(profile))


def show_usage(usage) -> None:
    summary = money.spend_summary(usage)
    kit.note_usage(state["profile"], usage)
    kit.set_text("budget-left", summary["remaining"] + " left")
    kit.set_text("usage-summary", summary["text"])
    kit.show_meter("meter", summary["percent"], summary["exhausted"], summary["spent"] != "$0.00")


async def refresh_usage(profile) -> None:
    code, data = await kit.request_json("/usage", token=profile["token"])
    if code == 200 and isinstance(data, dict):
        show_usage(data)
    elif code == 401:
        expired(session.error_message(code, data))
    else:
        kit.set_text("usage-summary", "Spend unavailable: " + session.error_message(code, data))


def expired(reason) -> None:
    kit.clear_profile()
    state["profile"] = None
    kit.show_who(None)
    show_signin(f"Your saved sign-in no longer works ({reason}). Please sign in again.")


# -- signing in ----------------------------------------------------------------------------
def show_signin(error=None) -> None:
    only("signin")
    target = redirect_target()
    if target and target[2] in ("http:", "https:"):
        where = handoff.normalize_origin(target[1])
        kit.set_text("signin-for", f"Sign in to continue to {where}.")
        kit.show("signin-for")
    google = bool(config.get("google_client_id"))
    kit.show("google-signin", google)
    kit.show("dev-form", bool(config.get("dev")))
    kit.show("no-signin", not google and not config.get("dev"))
    kit.set_text("signin-error", error or "")
    kit.show("signin-error", bool(error))
    if google and not state["google_ready"]:
        kit.spawn(start_google())


async def start_google() -> None:
    """Google's script loads async from their CDN; wait for it, then render its button."""
    waited = 0.0
    while not hasattr(js.window, "google") or js.window.google is None:
        if waited >= GOOGLE_WAIT_SECONDS:
            sign_in_failed("Google's sign-in could not load. Check your connection or extensions.")
            return
        await asyncio.sleep(0.05)
        waited += 0.05
    options = js.Object.new()
    options.client_id = config["google_client_id"]
    options.callback = create_proxy(on_google_credential)
    options.auto_select = False
    js.window.google.accounts.id.initialize(options)
    look = js.Object.new()
    look.theme = "outline"
    look.size = "large"
    look.text = "signin_with"
    js.window.google.accounts.id.renderButton(kit.node("google-button"), look)
    state["google_ready"] = True


def on_google_credential(response) -> None:
    # POSTed: a credential in a URL would sit in proxies' access logs.
    kit.spawn(exchange("/token", body={"credential": str(response.credential)}))


def on_dev_submit(event) -> None:
    event.preventDefault()
    email = str(kit.node("dev-email").value).strip()
    if email:
        kit.spawn(exchange("/dev-login", body={"email": email}))


async def exchange(url, body=None) -> None:
    """Trade a Google credential (or a dev email) for an AI Pipe token."""
    kit.hide("signin-error")
    code, data = await kit.request_json(url, method="POST" if body else "GET", body=body)
    profile = session.profile_from(data) if code == 200 else None
    if profile is None:
        sign_in_failed("Sign-in failed: " + session.error_message(code, data))
        return
    kit.save_profile(profile)
    signed_in(profile)


def sign_in_failed(message) -> None:
    kit.set_text("signin-error", message)
    kit.show("signin-error")


def sign_out(_event) -> None:
    kit.clear_profile()
    state["profile"] = None
    kit.show_who(None)
    if state["google_ready"]:
        js.window.google.accounts.id.disableAutoSelect()
    show_signin()


async def copy_token() -> None:
    copied = await kit.copy_text(state["profile"]["token"])
    kit.set_text("copy-status", "Copied to the clipboard." if copied
                 else "Your browser refused the clipboard: select the token and copy it.")
    kit.show("copy-status")


# -- start ---------------------------------------------------------------------------------
async def main() -> None:
    kit.on("handoff-approve", "click", approve)
    kit.on("handoff-deny", "click", deny)
    kit.on("handoff-switch", "click", switch_account)
    kit.on("dev-form", "submit", on_dev_submit)
    kit.on("signout", "click", sign_out)
    kit.on("copy-token", "click", lambda _event: copy_token())
    profile = kit.load_profile()
    kit.start_header(profile)
    if profile is None:
        show_signin()
    else:
        # A returning user: check the saved token still works before using or handing it on.
        code, data = await kit.request_json("/usage", token=profile["token"])
        if code == 401:
            expired(session.error_message(code, data))
        else:
            signed_in(profile, data if code == 200 and isinstance(data, dict) else None)
    kit.mark_ready()


kit.spawn(main())
