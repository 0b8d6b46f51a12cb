"""/admin: every user's spend, limit and requests (search, sort), total spend by day split by
provider, model or user (Vega-Lite), minting a token, overwriting a day's cost and downloading
the ledger. Non-admins get a clear refusal. Logic: admin_view, charts (pure, tested under
CPython); this file only wires the page."""

import asyncio

import admin_view
import dates
import handoff
import js
import pagekit as kit
import session
import vegakit
from pyscript.ffi import create_proxy

NUMERIC = ("spend", "limit", "days", "requests")
state = {"token": "", "users": [], "sort": "spend", "desc": True, "spend": None, "since": "",
         "group": "provider", "loads": 0}


def today() -> str:
    return str(js.Date.new().toISOString())[:10]


def failed(where, code, data) -> None:
    kit.set_text("load-error", where + ": " + session.error_message(code, data))
    kit.show("load-error")


# -- users -----------------------------------------------------------------------------------
async def load_users() -> bool:
    """True when the signed-in user is an admin and the table is filled."""
    code, data = await kit.request_json("/admin/users", token=state["token"])
    if code == 403:
        profile = kit.load_profile() or {}
        kit.set_text("refused-text", "This page is for AI Pipe admins, and " +
                     profile.get("email", "your account") + " is not one. An operator can add "
                     "admins with ADMIN_EMAILS (or the policy file's admins list).")
        kit.show("refused")
        kit.hide("console")
        return False
    if code == 401:
        kit.set_text("signin-text", "Your sign-in has expired or was revoked (" +
                     session.error_message(code, data) + "). Sign in again.")
        kit.show("signin-needed")
        kit.hide("console")
        return False
    if code != 200 or not isinstance(data, dict):
        failed("Could not load the users", code, data)
        return False
    state["users"] = data.get("data") or []
    kit.show("console")
    render_users()
    return True


def render_users() -> None:
    head = kit.node("users-head")
    head.innerHTML = ""
    for key, title in admin_view.USER_COLUMNS:
        cell = kit.make("th", None, scope="col", **({"class": "num"} if key in NUMERIC else {}))
        if key == state["sort"]:
            cell.setAttribute("aria-sort", "descending" if state["desc"] else "ascending")
        button = kit.make("button", title, type="button", data_sort=key)
        _wire_sort(button, key)
        cell.appendChild(button)
        head.appendChild(cell)
    shown = admin_view.filter_users(state["users"], kit.node("user-search").value)
    shown = admin_view.sort_users(shown, state["sort"], state["desc"])
    body = kit.node("users-body")
    body.innerHTML = ""
    for user in shown:
        row = kit.make("tr", None, data_email=user.get("email", ""))
        cells = admin_view.user_row(user)
        for index, (key, _title) in enumerate(admin_view.USER_COLUMNS):
            extra = {"class": "num"} if key in NUMERIC else {}
            row.appendChild(kit.make("td", cells[index], **extra))
        body.appendChild(row)
    kit.set_text("user-count", str(len(shown)) + " of " + str(len(state["users"])) + " users")


def _wire_sort(button, key) -> None:
    def listener(_event):
        if state["sort"] == key:
            state["desc"] = not state["desc"]
        else:
            state["sort"], state["desc"] = key, key in NUMERIC or key == "last"
        render_users()

    button.addEventListener("click", create_proxy(listener))


# -- the chart -------------------------------------------------------------------------------
def chart_days() -> int:
    text = str(kit.node("chart-days").value).strip()
    days = int(text) if text.isdigit() else 30
    return min(400, max(1, days))


async def fetch_text(url):
    headers = js.Headers.new()
    headers.set("Authorization", "Bearer " + state["token"])
    options = js.Object.new()
    options.headers = headers
    response = await js.fetch(url, options)
    return int(response.status), response


async def load_chart() -> None:
    """Everyone's spend per day and group, summed by the relay (/admin/spend), then drawn."""
    state["loads"] += 1
    mine = state["loads"]  # a newer load (group or days changed meanwhile) wins
    group = str(kit.node("group").value)
    since = dates.add_days(today(), 1 - chart_days())
    code, data = await kit.request_json("/admin/spend?group=" + handoff.quote(group) +
                                        "&since=" + since, token=state["token"])
    if mine != state["loads"]:
        return
    if code != 200 or not isinstance(data, dict):
        failed("Could not load the spend", code, data)
        return
    state["spend"], state["since"], state["group"] = data, since, group
    await draw_chart()


async def draw_chart() -> None:
    data = state["spend"]
    if data is None:
        return
    items, totals = data.get("data") or [], data.get("totals") or []
    spec = admin_view.chart_spec(items, totals, state["since"], today(), state["group"])
    await vegakit.draw("#admin-chart", spec)
    kit.set_text("chart-note", admin_view.chart_note(items))


# -- forms -----------------------------------------------------------------------------------
def submitted(handler):
    """A form's submit listener: stop the browser's own submit at once (the coroutine would
    run too late for that), then run `handler`."""
    def listener(event):
        event.preventDefault()
        kit.spawn(handler())

    return listener


async def mint() -> None:
    kit.hide("mint-error")
    email = str(kit.node("mint-email").value).strip()
    if not admin_view.looks_like_email(email):
        kit.set_text("mint-error", "Enter the user's email address.")
        kit.show("mint-error")
        return
    code, data = await kit.request_json("/admin/token?email=" + handoff.quote(email),
                                        token=state["token"])
    if code != 200 or not isinstance(data, dict) or not data.get("token"):
        kit.hide("minted")
        kit.set_text("mint-error", "Could not mint a token: " + session.error_message(code, data))
        kit.show("mint-error")
        return
    kit.set_text("minted-token", data["token"])
    kit.show("minted")


async def copy_minted() -> None:
    copied = await kit.copy_text(str(kit.node("minted-token").textContent))
    kit.set_text("copy-minted", "Copied" if copied else "Select and copy")


async def overwrite() -> None:
    body, error = admin_view.cost_form(kit.node("cost-email").value, kit.node("cost-date").value,
                                       kit.node("cost-amount").value)
    status = kit.node("cost-status")
    status.hidden = False
    if error:
        status.className = "small error"
        status.textContent = error
        return
    code, data = await kit.request_json("/admin/cost", method="POST", body=body,
                                        token=state["token"])
    if code != 200:
        status.className = "small error"
        status.textContent = "Not changed: " + session.error_message(code, data)
        return
    status.className = "small ok"
    status.textContent = (data or {}).get("message") or "Saved."
    await load_users()
    await load_chart()


async def download(fmt) -> None:
    status = kit.node("export-status")
    status.hidden = False
    status.className = "small muted"
    status.textContent = "Preparing the " + fmt + " export…"
    code, response = await fetch_text("/admin/export?format=" + fmt)
    if code != 200:
        status.className = "small error"
        status.textContent = "Export failed: " + session.error_message(code, None)
        return
    url = js.URL.createObjectURL(await response.blob())
    link = kit.make("a", None, href=url, download=admin_view.export_name(fmt, today()))
    js.document.body.appendChild(link)
    link.click()
    link.remove()
    status.className = "small ok"
    status.textContent = "Downloaded " + admin_view.export_name(fmt, today()) + "."
    await asyncio.sleep(5)  # give the browser time to start the download before freeing it
    js.URL.revokeObjectURL(url)


# -- start -----------------------------------------------------------------------------------
async def main() -> None:
    profile = kit.load_profile()
    kit.show_who(profile)
    try:
        if profile is None:
            kit.show("signin-needed")
            return
        state["token"] = profile["token"]
        kit.node("cost-date").value = today()
        kit.on("user-search", "input", lambda _e: render_users())
        kit.on("refresh", "click", lambda _e: load_users())
        kit.on("group", "change", lambda _e: load_chart())
        kit.on("chart-days", "change", lambda _e: load_chart())
        kit.on("mint-form", "submit", submitted(mint))
        kit.on("copy-minted", "click", lambda _e: copy_minted())
        kit.on("cost-form", "submit", submitted(overwrite))
        kit.on("export-csv", "click", lambda _e: download("csv"))
        kit.on("export-parquet", "click", lambda _e: download("parquet"))
        if await load_users():
            await load_chart()
    finally:
        kit.mark_ready()


kit.spawn(main())
