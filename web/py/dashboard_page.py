"""/dashboard: the signed-in user's spend against the limit, when budget frees up, a chart of
spend by day and by model (Vega-Lite, filling its card) with its legend, and the recent
requests. Skeletons hold the places while the figures load; a new user gets a friendly empty
state, not an empty axis. Logic: usage_view, charts (pure, tested under CPython)."""

import asyncio

import charts
import js
import markup
import money
import pagekit as kit
import session
import usage_view
import vegakit

REQUESTS_SHOWN = 500  # the endpoint's maximum: enough to split a week's spend by model
ROWS_SHOWN = 100
data = {"usage": None, "items": [], "show_free": False}


def today() -> str:
    return str(js.Date.new().toISOString())[:10]


def fill_table() -> None:
    items, hidden = usage_view.visible_requests(data["items"], data["show_free"])
    head = kit.node("requests-head")
    head.innerHTML = "".join(
        '<th scope="col"' + (' class="num"' if i in usage_view.NUMERIC_COLUMNS else "") + ">" +
        markup.escape(title) + "</th>" for i, title in enumerate(usage_view.COLUMNS))
    rows = []
    for item in items[:ROWS_SHOWN]:
        cells = usage_view.request_row(item)
        rows.append("<tr>" + "".join(
            '<td data-label="' + markup.escape(usage_view.COLUMNS[i]) + '"' +
            (' class="num"' if i in usage_view.NUMERIC_COLUMNS else "") + ">" +
            markup.escape(cell) + "</td>" for i, cell in enumerate(cells)) + "</tr>")
    kit.node("requests-body").innerHTML = "".join(rows)
    kit.show("show-free-label", hidden > 0 or data["show_free"])
    if not items:
        note = "No requests yet: try a model in the playground."
    else:
        note = "Newest first; " + money.plural(min(len(items), ROWS_SHOWN), "request") + " shown."
    if hidden:
        note += " " + money.plural(hidden, "free model-list call") + " not shown."
    kit.set_text("requests-note", note)


def show_summary(usage, items) -> None:
    summary = money.spend_summary(usage)
    kit.set_text("spend", summary["spent"])
    kit.set_text("limit", summary["limit"])
    kit.set_text("remaining", summary["remaining"])
    window = money.plural(summary["days"], "day")
    kit.set_text("window", "in the last " + window)
    kit.set_text("limit-sub", "per rolling " + str(summary["days"]) + "-day window")
    kit.set_text("request-count", str(usage_view.request_count(items, usage, today())))
    kit.set_text("request-sub", "in the last " + window)
    kit.show_meter("meter", summary["percent"], summary["exhausted"], summary["some"])
    kit.set_text("frees-up", usage_view.frees_up(usage, today())["text"])
    kit.set_text("chart-range", "last " + window + ", UTC")


async def draw_chart() -> None:
    usage = data["usage"]
    rows = usage_view.chart_rows(usage, data["items"], today())
    chart = kit.node("usage-chart")
    if not rows:
        chart.innerHTML = markup.empty_state(
            "No spend yet", "Your spend shows here, day by day and model by model, once you call "
            "a model.", "/playground", "Try a model in the playground")
        chart.setAttribute("aria-label", "No spend yet")
        chart.setAttribute("role", "region")
        kit.node("usage-legend").innerHTML = ""
        return
    width = int(chart.clientWidth) or 600
    spec = usage_view.chart_spec(usage, data["items"], today(), kit.theme(),
                                 vegakit.max_labels(width), width)
    chart.setAttribute("role", "img")
    chart.setAttribute("aria-label", spec["description"])
    kit.set_text("chart-note", usage_view.chart_note(rows))
    kit.show("chart-note", bool(usage_view.chart_note(rows)))
    legend = kit.node("usage-legend")
    legend.removeAttribute("aria-hidden")
    legend.innerHTML = markup.legend(charts.legend_entries(rows, "model"), "Models")
    await vegakit.draw("#usage-chart", spec)


def signed_out(text=None) -> None:
    if text:
        kit.set_text("signin-text", text)
    kit.show("signin-needed")
    kit.hide("report")


def toggle_free(_event) -> None:
    data["show_free"] = bool(kit.node("show-free").checked)
    fill_table()


async def main() -> None:
    profile = kit.load_profile()
    kit.start_header(profile)
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
            kit.show_who(None)
            signed_out("Your sign-in has expired or was revoked (" +
                       session.error_message(u_code, usage) + "). Sign in again.")
            return
        if u_code != 200 or not isinstance(usage, dict):
            kit.hide("report")
            kit.set_text("load-error", "Could not load your usage: " +
                         session.error_message(u_code, usage))
            kit.show("load-error")
            return
        kit.note_usage(profile, usage)
        items = recent.get("data") if r_code == 200 and isinstance(recent, dict) else []
        data["usage"], data["items"] = usage, items or []
        show_summary(usage, data["items"])
        fill_table()
        kit.on("show-free", "change", toggle_free)
        kit.on_theme(lambda _theme: draw_chart())
        await draw_chart()
    finally:
        kit.mark_ready()


kit.spawn(main())
