"""The admin page's logic: the users table (search, sort), the spend chart (from /admin/spend,
or from rows of the ledger export) and the admin forms' checks. Runs under CPython and
MicroPython (no `csv` module there, so the ledger's CSV is parsed here).
"""

import catalog
import charts
import dates

USER_COLUMNS = (  # (key, heading)
    ("email", "Email"), ("spend", "Spend"), ("limit", "Limit"), ("days", "Window"),
    ("requests", "Requests"), ("last", "Last request"), ("admin", "Admin"),
)
GROUPS = {"provider": "Provider", "model": "Model", "email": "User"}
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
            return charts.pico(u.get(key))
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
    spend, limit = charts.pico(user.get("spend")), charts.pico(user.get("limit"))
    share = ""
    if limit > 0:
        share = " (" + str((spend * 100 + limit // 2) // limit) + "%)"
    return [
        str(user.get("email", "")),
        catalog.format_pico(spend) + share,
        catalog.format_pico(limit),
        str(user.get("days", "")) + " days",
        str(user.get("requests", 0)),
        dates.timestamp(user.get("last")) if user.get("last") else "never",
        "yes" if user.get("admin") else "",
    ]


def parse_csv(text: str) -> list:
    """RFC 4180 CSV (quoted fields, doubled quotes, CRLF) -> list of rows (lists of text)."""
    rows, row, field = [], [], ""
    i, n, quoted = 0, len(text), False
    while i < n:
        ch = text[i]
        if quoted:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    field += '"'
                    i += 1
                else:
                    quoted = False
            else:
                field += ch
        elif ch == '"':
            quoted = True
        elif ch == ",":
            row.append(field)
            field = ""
        elif ch == "\n" or ch == "\r":
            if ch == "\r" and i + 1 < n and text[i + 1] == "\n":
                i += 1
            row.append(field)
            rows.append(row)
            row, field = [], ""
        else:
            field += ch
        i += 1
    if field or row:
        row.append(field)
        rows.append(row)
    return rows


def ledger_records(text: str) -> list:
    """The export's CSV -> dicts by header name."""
    rows = parse_csv(text)
    if not rows:
        return []
    header = rows[0]
    # (no zip(strict=...) in MicroPython; rows of the wrong width are skipped)
    return [{header[i]: row[i] for i in range(len(header))}
            for row in rows[1:] if len(row) == len(header)]


def group_value(record, group: str) -> str:
    """/admin/spend items hold the group's value as "key", ledger rows under the column name."""
    value = record.get("key") if "key" in record else record.get(group)
    return str(value or "?")


def chart_rows(records, daily, since: str, today: str, group: str) -> list:
    """Everyone's spend per day from `since` to `today`, split by provider, model or user.

    records: /admin/spend items (already summed per day and group) or ledger dicts (from the
    export); daily: [{"date", "cost"}], the per-day totals budgets use (/admin/spend's
    "totals" or /admin/usage items), which an admin may have overwritten."""
    span = dates.to_days(today) - dates.to_days(since) + 1
    window = dates.window(today, span)
    items = [(str(r.get("date", ""))[:10], group_value(r, group), charts.pico(r.get("cost")))
             for r in records]
    return charts.stacked_rows(charts.day_totals(daily), items, window, group)


def chart_spec(records, daily, since: str, today: str, group: str) -> dict:
    span = dates.to_days(today) - dates.to_days(since) + 1
    window = dates.window(today, span)
    title = "Total spend by day (UTC), last " + str(span) + " days"
    return charts.spend_spec(chart_rows(records, daily, since, today, group), window, group,
                             title, GROUPS.get(group, group))


def chart_note(items) -> str:
    """The line under the chart: how many requests it covers and what "(other)" means."""
    count = 0
    for item in items:
        count += int(item.get("requests") or 0)
    return (str(count) + (" request" if count == 1 else " requests") + " in the ledger for these "
            "days; bars total the per-day costs budgets use, \"(other)\" is cost the ledger does "
            "not itemise (for example a day overwritten by an admin).")


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
    amount = catalog.scaled(text, 12) if text else None
    if amount is None or "e" in text.lower():
        return None, "Enter the cost in USD, e.g. 0.25 (0 clears the day)."
    if amount > MAX_COST * charts.PICO:
        return None, "The cost must be at most $1,000,000."
    return {"email": email, "date": day, "cost": text}, None


def export_name(fmt: str, today: str) -> str:
    return "aipipe-ledger-" + today + "." + ("csv" if fmt == "csv" else "parquet")
