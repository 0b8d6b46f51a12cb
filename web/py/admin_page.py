"""/admin: everyone's spend at a glance (totals, top users, top models), total spend by day
split by provider, model or user (the biggest by name, the rest as "N more"), the users table
(search, sort), minting a token, overwriting a day's cost and downloading the ledger.
Non-admins get a clear refusal — decided from /usage, so they never trigger a 403.
Logic: admin_view, charts (pure, tested under CPython); this file only wires the page."""

import asyncio

import admin_view
import charts
import dates
import handoff
import js
import markup
import pagekit as kit
import session
import vegakit

NUMERIC = ("spend", "limit", "days", "requests")
state = {"token": "", "users": [], "sort": "spend", "desc": True, "spend": None, "models": None,
         "since": "", "group": "provider", "days": 30, "loads": 0}


def today() -> str:
    return str(js.Date.new().toISOString())[:10]


def failed(where, code, data) -> None:
    kit.set_text("load-error", where + ": " + session.error_message(code, data))
    kit.show("load-error")


def refuse(profile) -> None:
    kit.set_text("refused-text", "This page is for AI Pipe admins, and " +
                 profile.get("email", "your account") + " is not one. An operator can add "
                 "admins with ADMIN_EMAILS (or the policy file's admins list).")
    kit.show("refused")
    kit.hide("console")
    kit.hide("refresh")
    kit.hide("load-error")  # (an admin no longer: the admin calls were refused too)


def expired(code, data) -> None:
    kit.show_who(None)
    kit.set_text("signin-text", "Your sign-in has expired or was revoked (" +
                 session.error_message(code, data) + "). Sign in again.")
    kit.show("signin-needed")
    kit.hide("console")
    kit.hide("refresh")


# -- users -----------------------------------------------------------------------------------
async def load_users() -> bool:
    code, data = await kit.request_json("/admin/users", token=state["token"])
    if code == 401:
        expired(code, data)
        return False
    if code != 200 or not isinstance(data, dict):
        failed("Could not load the users", code, data)
        return False
    state["users"] = data.get("data") or []
    render_users()
    entries = admin_view.top_users(state["users"])
    kit.node("top-users").innerHTML = markup.ranked(entries) if entries else markup.empty_state(
        "Nobody has spent anything yet", "Users appear here once they call a model.", icon="list")
    show_overview()
    return True


def render_users() -> None:
    head = []
    for key, title in admin_view.USER_COLUMNS:
        sort = ""
        if key == state["sort"]:
            sort = ' aria-sort="' + ("descending" if state["desc"] else "ascending") + '"'
        head.append('<th scope="col"' + (' class="num"' if key in NUMERIC else "") + sort +
                    '><button type="button" data-sort="' + key + '">' + markup.escape(title) +
                    "</button></th>")
    kit.node("users-head").innerHTML = "".join(head)
    shown = admin_view.filter_users(state["users"], kit.node("user-search").value)
    shown = admin_view.sort_users(shown, state["sort"], state["desc"])
    rows = []
    for user in shown:
        cells = admin_view.user_row(user)
        tds = []
        for index, (key, title) in enumerate(admin_view.USER_COLUMNS):
            text = markup.escape(cells[index])
            if key == "admin":
                text = '<span class="badge' + (" accent" if user.get("admin") else "") + '">' + \
                    text + "</span>"
            tds.append('<td data-label="' + markup.escape(title) + '"' +
                       (' class="num"' if key in NUMERIC else "") + ">" + text + "</td>")
        rows.append('<tr data-email="' + markup.escape(user.get("email", "")) + '">' +
                    "".join(tds) + "</tr>")
    kit.node("users-body").innerHTML = "".join(rows)
    kit.set_text("user-count", str(len(shown)) + " of " + str(len(state["users"])) + " users")


def sort_click(event) -> None:
    button = event.target.closest("button[data-sort]")
    if not button:
        return
    key = str(button.dataset.sort)
    if state["sort"] == key:
        state["desc"] = not state["desc"]
    else:
        state["sort"], state["desc"] = key, key in NUMERIC or key == "last"
    render_users()
    refocused = kit.node("users-head").querySelector('button[data-sort="' + key + '"]')
    if refocused:
        refocused.focus()


# -- the chart and the overview --------------------------------------------------------------
async def load_chart() -> None:
    """Everyone's spend per day and group, summed by the relay (/admin/spend), then drawn; the
    model split also feeds "Top models"."""
    state["loads"] += 1
    mine = state["loads"]  # a newer load (group or days changed meanwhile) wins
    group = state["group"]
    since = dates.add_days(today(), 1 - state["days"])
    wanted = [group] if group == "model" else [group, "model"]
    found = await asyncio.gather(*[kit.request_json(
        "/admin/spend?group=" + handoff.quote(g) + "&since=" + since, token=state["token"])
        for g in wanted])
    if mine != state["loads"]:
        return
    for (code, data) in found:
        if code != 200 or not isinstance(data, dict):
            failed("Could not load the spend", code, data)
            return
    state["spend"], state["since"] = found[0][1], since
    state["models"] = found[-1][1]
    show_top_models()
    show_overview()
    await draw_chart()


def show_top_models() -> None:
    items = state["models"].get("data") or []
    entries = admin_view.top_keys(items)
    kit.set_text("top-models-note", "By spend in the last " + str(state["days"]) + " days.")
    box = kit.node("top-models")
    box.innerHTML = markup.ranked(entries) if entries else markup.empty_state(
        "No model calls yet", "Models appear here once users call them.", icon="list")


def show_overview() -> None:
    if state["spend"] is None:
        return
    figures = admin_view.overview(state["users"], state["spend"].get("data") or [],
                                  state["spend"].get("totals") or [])
    days = str(state["days"]) + " days"
    kit.set_text("stat-spend", figures["spend"])
    kit.set_text("stat-spend-sub", "all users, last " + days)
    kit.set_text("stat-requests", figures["requests"])
    kit.set_text("stat-requests-sub", "last " + days)
    if state["users"] or figures["users"] != "0":
        kit.set_text("stat-users", figures["users"])
        kit.set_text("stat-over", figures["over"])


async def draw_chart() -> None:
    data = state["spend"]
    if data is None:
        return
    items, totals = data.get("data") or [], data.get("totals") or []
    chart = kit.node("admin-chart")
    rows = admin_view.chart_rows(items, totals, state["since"], today(), state["group"])
    kit.set_text("chart-note", admin_view.chart_note(items))
    if not rows:
        chart.innerHTML = markup.empty_state(
            "No spend in these days", "Bars appear here once users call models.")
        chart.setAttribute("role", "region")
        chart.setAttribute("aria-label", "No spend in these days")
        kit.node("admin-legend").innerHTML = ""
        return
    width = int(chart.clientWidth) or 600
    spec = admin_view.chart_spec(items, totals, state["since"], today(), state["group"],
                                 kit.theme(), vegakit.max_labels(width), width)
    chart.setAttribute("role", "img")
    chart.setAttribute("aria-label", spec["description"])
    title = admin_view.GROUPS.get(state["group"], "") + "s"
    kit.node("admin-legend").innerHTML = markup.legend(
        charts.legend_entries(rows, state["group"]), title)
    await vegakit.draw("#admin-chart", spec)


def pick(container_id, attribute, value) -> None:
    for button in kit.all_nodes("#" + container_id + " button"):
        button.setAttribute("aria-pressed", "true" if str(button.getAttribute(attribute)) == value
                            else "false")


def group_click(event) -> None:
    button = event.target.closest("button[data-group]")
    if button and str(button.dataset.group) != state["group"]:
        state["group"] = str(button.dataset.group)
        pick("group", "data-group", state["group"])
        kit.spawn(load_chart())


def days_click(event) -> None:
    button = event.target.closest("button[data-days]")
    if button and int(str(button.dataset.days)) != state["days"]:
        state["days"] = int(str(button.dataset.days))
        pick("chart-days", "data-days", str(state["days"]))
        kit.spawn(load_chart())


async def refresh() -> None:
    if await load_users():
        await load_chart()


# -- forms -----------------------------------------------------------------------------------
def submitted(handler):
    """A form's submit listener: stop the browser's own submit at once (the coroutine would
    run too late for that), then run `handler`."""
    def listener(event):
        event.preventDefault()
        kit.spawn(handler())

    return listener


def status(id_or_testid, kind, text) -> None:
    element = kit.node(id_or_testid)
    element.hidden = False
    element.className = "small " + kind
    element.textContent = text


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


async def overwrite() -> None:
    body, error = admin_view.cost_form(kit.node("cost-email").value, kit.node("cost-date").value,
                                       kit.node("cost-amount").value)
    if error:
        status("cost-status", "error", error)
        return
    code, data = await kit.request_json("/admin/cost", method="POST", body=body,
                                        token=state["token"])
    if code != 200:
        status("cost-status", "error", "Not changed: " + session.error_message(code, data))
        return
    status("cost-status", "ok", (data or {}).get("message") or "Saved.")
    await refresh()


async def download(fmt) -> None:
    status("export-status", "muted", "Preparing the " + fmt.upper() + " export…")
    headers = js.Headers.new()
    headers.set("Authorization", "Bearer " + state["token"])
    options = js.Object.new()
    options.headers = headers
    response = await js.fetch("/admin/export?format=" + fmt, options)
    if int(response.status) != 200:
        status("export-status", "error", "Export failed: the server answered HTTP " +
               str(response.status))
        return
    url = js.URL.createObjectURL(await response.blob())
    name = admin_view.export_name(fmt, today())
    link = kit.make("a", None, href=url, download=name)
    js.document.body.appendChild(link)
    link.click()
    link.remove()
    status("export-status", "ok", "Downloaded " + name + ".")
    await asyncio.sleep(5)  # give the browser time to start the download before freeing it
    js.URL.revokeObjectURL(url)


# -- start -----------------------------------------------------------------------------------
def wire() -> None:
    kit.on("user-search", "input", lambda _e: render_users())
    kit.on("users-head", "click", sort_click)
    kit.on("refresh", "click", lambda _e: refresh())
    kit.on("group", "click", group_click)
    kit.on("chart-days", "click", days_click)
    kit.on("mint-form", "submit", submitted(mint))
    kit.wire_copy(kit.node("copy-minted"), lambda: str(kit.node("minted-token").textContent))
    kit.on("cost-form", "submit", submitted(overwrite))
    kit.on("export-csv", "click", lambda _e: download("csv"))
    kit.on("export-parquet", "click", lambda _e: download("parquet"))
    kit.on_theme(lambda _theme: draw_chart())


async def main() -> None:
    profile = kit.load_profile()
    kit.start_header(profile)
    try:
        if profile is None:
            kit.show("signin-needed")
            kit.hide("console")
            kit.hide("refresh")
            return
        state["token"] = profile["token"]
        kit.node("cost-date").value = today()
        # Seen as an admin before: ask for everything at once. Otherwise /usage first, so a
        # student never triggers a 403 (a red line in the console).
        known = str(js.window.localStorage.getItem(kit.ADMIN_KEY) or "") == profile["email"]
        if known:
            wire()
            (code, usage), _users, _chart = await asyncio.gather(
                kit.request_json("/usage", token=state["token"]), load_users(), load_chart())
        else:
            code, usage = await kit.request_json("/usage", token=state["token"])
        if code == 401:
            expired(code, usage)
            return
        kit.note_usage(profile, usage)
        if code == 200 and isinstance(usage, dict) and not usage.get("admin"):
            refuse(profile)
            return
        kit.show("console")
        if not known:
            wire()
            await asyncio.gather(load_users(), load_chart())
        show_overview()
    finally:
        kit.mark_ready()


kit.spawn(main())
