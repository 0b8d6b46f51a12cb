"""The header every page shares: the brand, the page links (the current one marked), the theme
switch and the account corner. web/static/boot.js shows the right state (theme, signed in,
admin) before the first paint; the page's Python (web/py/pagekit.py) keeps it.
"""

from __future__ import annotations

# The header's links (path, label, class); "admin-only" links show only to admins (the page
# learns that from /usage). On a phone the links get a row of their own.
NAV = (("/playground", "Playground", ""), ("/scratchpad", "Scratchpad", ""),
       ("/dashboard", "Usage", ""), ("/admin", "Admin", "admin-only"))
ACCOUNT = "/login"  # the account corner's page: "Sign in", or the signed-in email
_MOON = ('<svg class="icon icon-moon" viewBox="0 0 24 24" aria-hidden="true"><path d="M21 12.8A9 9 0 '
         '1 1 11.2 3a7 7 0 0 0 9.8 9.8z"/></svg>')
_SUN = ('<svg class="icon icon-sun" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" '
        'r="4"/><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4'
        '-1.4M17.7 6.3l1.4-1.4"/></svg>')


def nav(current: str) -> str:
    """The header's HTML for the page at path `current` (marked `aria-current="page"`)."""
    links = []
    for path, label, kind in NAV:
        attrs = ' aria-current="page"' if path == current else ""
        attrs += f' class="{kind}"' if kind else ""
        links.append(f'<a href="{path}"{attrs}>{label}</a>')
    account_current = ' aria-current="page"' if current == ACCOUNT else ""
    return (
        '<a class="skip" href="#main">Skip to content</a>'
        '<header class="bar"><a class="brand" href="/"><span class="logo" aria-hidden="true"></span>'
        f'AI Pipe</a><nav class="links" aria-label="Pages">{"".join(links)}</nav>'
        '<div class="bar-end"><button type="button" class="icon-button" id="theme-toggle" '
        f'data-testid="theme-toggle" aria-label="Dark theme" aria-pressed="false">{_MOON}{_SUN}'
        f'</button><a class="account" id="account-link" href="{ACCOUNT}"{account_current}>'
        '<span class="avatar" id="avatar" aria-hidden="true"></span>'
        '<span class="who" id="who" data-testid="who"></span>'
        '<span class="signin-label">Sign in</span></a></div></header>'
    )
