"""The admin page's logic: the users table (search, sort), the overview, the spend chart (from
/admin/spend) and the admin forms' checks. Runs under CPython and MicroPython.
"""

import charts
import dates
import money

USER_COLUMNS = (  # (key, heading)
    ("email", "Email"), ("spend", "Spend"), ("limit", "Limit"), ("days", "Window"),
    ("requests", "Requests"), ("last", "Last request (UTC)"), ("admin", "Role"),
)
GROUPS = {"provider": "Provider", "model": "Model", "email": "User"}
NOUNS = {"provider": "provider", "model": "model", "email": "user"}  # for "12 more users"
TOP_LISTED = 5
MAX_COST = 1000000


def filter_users(users, query: str) -> list:
    words = str(query or "").lower().split()
    return [u for u in users if all(w in str(u.get("email", "")).lower() for w in words)]


def sort_users(users, key: str, descending: bool = False) -> list:
    """Sort by a column; missing values (a user with no request has no "last") go last."""
    present = [u for u in users if u.get(key) is not None]
    missing = [u for u in users if u.get(key) is None]
    if key in ("spend", "limit"):
        def value(u):
            return money.pico(u.get(key))
    elif key in ("days", "requests"):
        def value(u):
            return int(u.get(key) or 0)
    elif key == "admin":
        def value(u):
            return 1 if u.get(key) else 0
    else:
        def value(u):
            return str(u.get(key)).lower()
    ordered = sorted(present, key=lambda u: (value(u), str(u.get("email", ""))),
                     reverse=descending)
    return ordered + missing


def user_row(user) -> list:
    spend, limit = money.pico(user.get("spend")), money.pico(user.get("limit"))
    share = ""
    if limit > 0:
        share = " (" + str((spend * 100 + limit // 2) // limit) + "%)"
    return [
        str(user.get("email", "")),
        money.usd(spend) + share,
        money.usd(limit),
        str(user.get("days", "")) + " days",
        str(user.get("requests", 0)),
        dates.moment(user.get("last")) if user.get("last") else "never",
        "admin" if user.get("admin") else "user",
    ]


def overview(users, items, daily) -> dict:
    """The figures at the top of the page: total spend over the chart's days (the per-day costs
    budgets use), requests in them, users, and how many are at their limit now."""
    spent = sum(money.pico(d.get("cost")) for d in daily)
    requests = sum(int(i.get("requests") or 0) for i in items)
    over = 0
    for user in users:
        limit = money.pico(user.get("limit"))
        if limit > 0 and money.pico(user.get("spend")) >= limit:
            over += 1
    return {"spend": money.usd(spent), "requests": str(requests),
            "users": str(len(users)), "over": str(over)}


def top_users(users, n: int = TOP_LISTED) -> list:
    """[(email, "$0.25 · 25% of $1.00", bar share)] for the biggest spenders (in their budget
    window), bars relative to the biggest."""
    spenders = [u for u in users if money.pico(u.get("spend")) > 0]
    spenders = sorted(spenders, key=lambda u: (-money.pico(u.get("spend")), str(u.get("email"))))
    top = spenders[:n]
    most = money.pico(top[0].get("spend")) if top else 0
    out = []
    for user in top:
        spend, limit = money.pico(user.get("spend")), money.pico(user.get("limit"))
        text = money.usd(spend)
        if limit > 0:
            text += " · " + str((spend * 100 + limit // 2) // limit) + "% of " + \
                money.usd(limit)
        out.append((str(user.get("email", "")), text, spend * 100 // most if most else 0))
    return out


def top_keys(items, n: int = TOP_LISTED) -> list:
    """/admin/spend items (per day and key) -> [(key, "$0.25 · 12 requests", bar share)] for
    the biggest keys over all days."""
    spend, count = {}, {}
    for item in items:
        key = str(item.get("key") or "?")
        spend[key] = spend.get(key, 0) + money.pico(item.get("cost"))
        count[key] = count.get(key, 0) + int(item.get("requests") or 0)
    keys = sorted([k for k in spend if spend[k] > 0], key=lambda k: (-spend[k], k))[:n]
    most = spend[keys[0]] if keys else 0
    return [(k, money.usd(spend[k]) + " · " + str(count[k]) +
             (" request" if count[k] == 1 else " requests"), spend[k] * 100 // most)
            for k in keys]


def chart_rows(records, daily, since: str, today: str, group: str) -> list:
    """Everyone's spend per day from `since` to `today`, split by provider, model or user (the
    biggest by name, the rest as one "N more" series).

    records: /admin/spend items (summed per day, their group's value as "key"); daily:
    [{"date", "cost"}], the per-day totals budgets use (/admin/spend's "totals"), which an admin
    may have overwritten."""
    span = dates.to_days(today) - dates.to_days(since) + 1
    window = dates.window(today, span)
    items = [(str(r.get("date", ""))[:10], str(r.get("key") or "?"), money.pico(r.get("cost")))
             for r in records]
    rows = charts.stacked_rows(charts.day_totals(daily), items, window, group)
    return charts.top_n(rows, group, NOUNS.get(group, "other"))


def chart_spec(records, daily, since: str, today: str, group: str, theme: str = "light",
               max_labels: int = 10, width: int = 600) -> dict:
    span = dates.to_days(today) - dates.to_days(since) + 1
    window = dates.window(today, span)
    rows = chart_rows(records, daily, since, today, group)
    title = GROUPS.get(group, group)
    return charts.spend_spec(rows, window, group, title, theme, max_labels,
                             description=charts.summary_text(rows, window, title), width=width)


def chart_note(items) -> str:
    """The line under the chart: how many requests it covers and what "(other)" means."""
    count = 0
    for item in items:
        count += int(item.get("requests") or 0)
    return (str(count) + (" request" if count == 1 else " requests") + " in the ledger for these "
            "days. Bars total the per-day costs budgets use; \"(other)\" is cost the ledger "
            "does not explain (for example a day overwritten by an admin).")


def looks_like_email(text: str) -> bool:
    text = str(text or "").strip()
    local, at, domain = text.partition("@")
    return bool(at and local and "." in domain and " " not in text and "@" not in domain)


def cost_form(email: str, day: str, cost: str):
    """The "overwrite a day's cost" form -> (body dict, None) or (None, error text)."""
    email = str(email or "").strip()
    if not looks_like_email(email):
        return None, "Enter the user's email address."
    day = str(day or "").strip()
    if not dates.is_date(day):
        return None, "Enter the date as YYYY-MM-DD."
    text = str(cost or "").strip()
    amount = money.scaled(text) if text else None
    if amount is None or "e" in text.lower():
        return None, "Enter the cost in USD, e.g. 0.25 (0 clears the day)."
    if amount > MAX_COST * money.PICO:
        return None, "The cost must be at most $1,000,000."
    return {"email": email, "date": day, "cost": text}, None


def export_name(fmt: str, today: str) -> str:
    return "aipipe-ledger-" + today + "." + ("csv" if fmt == "csv" else "parquet")
