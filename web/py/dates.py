"""UTC calendar dates as ISO text ("2026-01-31") and day numbers, without `datetime`.

MicroPython (the pages' interpreter) has no `datetime`, and budget windows are whole UTC dates,
so plain proleptic-Gregorian arithmetic on day numbers is all the pages need.
Runs under CPython and MicroPython.
"""


def to_days(iso: str) -> int:
    """"YYYY-MM-DD" (anything after the 10th character is ignored) -> days since 1970-01-01.

    Raises ValueError for text that is not a real date.
    """
    text = str(iso)[:10]
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError("not a date: " + text)
    y, m, d = text[:4], text[5:7], text[8:10]
    if not (y.isdigit() and m.isdigit() and d.isdigit()):
        raise ValueError("not a date: " + text)
    year, month, day = int(y), int(m), int(d)
    if not 1 <= month <= 12 or not 1 <= day <= days_in_month(year, month):
        raise ValueError("not a date: " + text)
    # Howard Hinnant's days_from_civil.
    year -= 1 if month <= 2 else 0
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def from_days(n: int) -> str:
    """Days since 1970-01-01 -> "YYYY-MM-DD"."""
    n += 719468
    era = (n if n >= 0 else n - 146096) // 146097
    doe = n - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    year = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    year += 1 if month <= 2 else 0
    return f"{year:04d}-{month:02d}-{day:02d}"


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def is_date(text) -> bool:
    try:
        to_days(text)
    except (ValueError, TypeError):
        return False
    return len(str(text)) == 10


def add_days(iso: str, n: int) -> str:
    return from_days(to_days(iso) + n)


def window(today: str, days: int) -> list:
    """The budget window's dates, oldest first: the previous `days - 1` dates and today."""
    start = to_days(today) - max(1, int(days)) + 1
    return [from_days(start + i) for i in range(max(1, int(days)))]


def short(iso: str) -> str:
    """"2026-01-31" -> "Jan 31" (for axis labels and sentences)."""
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    text = str(iso)
    return names[int(text[5:7]) - 1] + " " + str(int(text[8:10]))


def timestamp(ts) -> str:
    """The relay's "2026-01-31T12:34:56.789012Z" -> "2026-01-31 12:34:56 UTC"; other text as is."""
    text = str(ts or "")
    if len(text) >= 19 and text[10] == "T":
        return text[:10] + " " + text[11:19] + " UTC"
    return text


def moment(ts) -> str:
    """The relay's "2026-01-31T12:34:56.789012Z" -> "Jan 31, 12:34:56" (UTC); other text as is."""
    text = str(ts or "")
    if len(text) >= 19 and text[10] == "T" and is_date(text[:10]):
        return short(text[:10]) + ", " + text[11:19]
    return text
