"""/dashboard: the signed-in user's spend against the limit, when budget frees up, a chart of
spend by day and by model (Vega-Lite) and the recent requests. Logic: usage_view, charts (pure,
tested under CPython); this file only wires the page."""

import asyncio

import js
import money
import pagekit as kit
import session
import usage_view
import vegakit

REQUESTS_SHOWN = 500  # the endpoint's maximum: enough to split a week's spend by model


def today() -> str:
    return str(js.Date.new().toISOString())[:10]


def fill_table(items) -> None:
    head = kit.node("requests-head")
    head.innerHTML = ""
    for title in usage_view.COLUMNS:
        head.appendChild(kit.make("th", title, scope="col"))
    body = kit.node("requests-body")
    body.innerHTML = ""
    for item in items[:100]:
        row = kit.make("tr")
        for index, cell in enumerate(usage_view.request_row(item)):
            row.appendChild(kit.make("td", cell, **({"class": "num"} if index == 3 else {})))
        body.appendChild(row)
    if not items:
        kit.set_text("requests-note", "No requests yet: try a model in the playground.")
    else:
        kit.set_text("requests-note", "Newest first; " + money.plural(min(len(items), 100),
                                                                     "request") + " shown.")


def show_summary(usage) -> None:
    summary = usage_view.summary(usage)
    kit.set_text("spend", summary["spent"])
    kit.set_text("limit", summary["limit"])
    kit.set_text("remaining", summary["remaining"])
    kit.set_text("window", money.plural(summary["days"], "day"))
    kit.node("meter-bar").style.width = str(summary["percent"]) + "%"
    kit.node("meter").classList.toggle("full", summary["exhausted"])
    kit.set_text("frees-up", usage_view.frees_up(usage, today())["text"])


def signed_out(text=None) -> None:
    if text:
        kit.set_text("signin-text", text)
    kit.show("signin-needed")
    kit.hide("report")


async def main() -> None:
    profile = kit.load_profile()
    kit.show_who(profile)
    if profile is None:
        signed_out()
        kit.mark_ready()
        return
    token = profile["token"]
    try:
        (u_code, usage), (r_code, recent) = await asyncio.gather(
            kit.request_json("/usage", token=token),
            kit.request_json("/usage/requests?limit=" + str(REQUESTS_SHOWN), token=token))
        if u_code == 401:
            signed_out("Your sign-in has expired or was revoked (" +
                       session.error_message(u_code, usage) + "). Sign in again.")
            return
        if u_code != 200 or not isinstance(usage, dict):
            kit.set_text("load-error", "Could not load your usage: " +
                         session.error_message(u_code, usage))
            kit.show("load-error")
            return
        items = recent.get("data") if r_code == 200 and isinstance(recent, dict) else []
        kit.show("report")
        show_summary(usage)
        fill_table(items or [])
        await vegakit.draw("#usage-chart",
                           usage_view.chart_spec(usage, items or [], today()))
    finally:
        kit.mark_ready()


kit.spawn(main())
