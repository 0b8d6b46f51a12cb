"""HTML text built in Python and set with one `innerHTML` (far fewer browser calls than making
each node through the JS bridge): escaping, and the pieces several pages share — a box of code
examples with tabs and a Copy button, legends, ranked bars.
Runs under CPython and MicroPython.
"""


def escape(text) -> str:
    """Text -> HTML-safe text (also safe inside double-quoted attribute values)."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def slug(text) -> str:
    """Text -> a fragment safe in an id ("openai:gpt-4o" -> "openai-gpt-4o")."""
    out = []
    for ch in str(text).lower():
        out.append(ch if ch.isalpha() or ch.isdigit() else "-")
    return "".join(out).strip("-") or "x"


def code_box(prefix: str, items, label: str = "Examples") -> str:
    """Tabs of code [(key, title, code)] with one Copy button for the shown tab: the toolbar sits
    above the code, so the button never covers it. Each pane keeps `data-testid="snippet-<key>"`.
    """
    tabs, panes = [], []
    for index, (key, title, code) in enumerate(items):
        tab_id, pane_id = prefix + "-tab-" + key, prefix + "-pane-" + key
        selected = "true" if index == 0 else "false"
        tabs.append('<button type="button" role="tab" id="' + escape(tab_id) + '" aria-selected="' +
                    selected + '" aria-controls="' + escape(pane_id) + '" tabindex="' +
                    ("0" if index == 0 else "-1") + '" data-snippet="' + escape(key) + '">' +
                    escape(title) + "</button>")
        panes.append('<div role="tabpanel" id="' + escape(pane_id) + '" aria-labelledby="' +
                     escape(tab_id) + '" data-testid="snippet-' + escape(key) + '"' +
                     ("" if index == 0 else " hidden") + '><pre tabindex="0"><code>' +
                     escape(code) + "</code></pre></div>")
    return ('<div class="codebox"><div class="codebar"><div class="tabs" role="tablist" '
            'aria-label="' + escape(label) + '">' + "".join(tabs) + '</div><button type="button" '
            'class="secondary small copy" data-copy="tab">Copy</button></div>' + "".join(panes) +
            "</div>")


def next_tab(index: int, count: int, key: str) -> int:
    """Arrow keys move along a tab list (wrapping), Home and End jump; others stay put."""
    if count <= 0:
        return 0
    if key == "ArrowRight":
        return (index + 1) % count
    if key == "ArrowLeft":
        return (index - 1) % count
    if key == "Home":
        return 0
    if key == "End":
        return count - 1
    return index


def legend(entries, title: str = "") -> str:
    """[(colour, name, amount text)] -> a list with colour swatches matching the chart."""
    rows = []
    for colour, name, amount in entries:
        rows.append('<li><span class="swatch" style="background:' + escape(colour) +
                    '"></span><span class="key">' + escape(name) + '</span><span class="amount">' +
                    escape(amount) + "</span></li>")
    head = '<div class="legend-title">' + escape(title) + "</div>" if title else ""
    return head + '<ul class="legend">' + "".join(rows) + "</ul>"


def ranked(entries) -> str:
    """[(name, amount text, share 0-100)] -> names with amounts over proportional bars."""
    rows = []
    for name, amount, share in entries:
        width = max(0, min(100, int(share)))
        rows.append('<li><span class="key">' + escape(name) + '</span><span class="amount">' +
                    escape(amount) + '</span><span class="bar" aria-hidden="true"><span style="width:' +
                    str(width) + '%"></span></span></li>')
    return '<ol class="ranked">' + "".join(rows) + "</ol>"


def empty_state(title: str, text: str, link_href: str = "", link_text: str = "",
                icon: str = "chart") -> str:
    """A friendly "nothing here yet" block with an optional next step."""
    link = ""
    if link_href:
        link = ('<p><a class="button secondary small" href="' + escape(link_href) + '">' +
                escape(link_text) + "</a></p>")
    return ('<div class="empty-state"><div class="empty-icon" aria-hidden="true">' + ICONS.get(icon, "") +
            "</div><h3>" + escape(title) + "</h3><p>" + escape(text) + "</p>" + link + "</div>")


ICONS = {
    "chart": '<svg class="icon" viewBox="0 0 24 24"><path d="M4 20V10M10 20V4M16 20v-7M22 20H2"/></svg>',
    "list": ('<svg class="icon" viewBox="0 0 24 24"><path d="M8 6h13M8 12h13M8 18h13M3 6h.01'
             'M3 12h.01M3 18h.01"/></svg>'),
}
