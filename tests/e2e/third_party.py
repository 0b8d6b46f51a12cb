"""A third-party web app on another origin that signs its users in with the relay's aipipe.js."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Some app</title></head>
<body>
<h1>Some app</h1>
<p>Email: <span data-testid="app-email"></span></p>
<p>Token: <span data-testid="app-token"></span></p>
<button data-testid="app-login">Log in with AI Pipe</button>
<button data-testid="app-logout">Log out</button>
<script type="module">
import { getProfile, login, logout, baseUrl } from "RELAY/aipipe.js";
const show = (profile) => {
  document.querySelector("[data-testid=app-email]").textContent = profile.email || "";
  document.querySelector("[data-testid=app-token]").textContent = profile.token || "";
};
const profile = getProfile();
window.aipipeProfile = profile;
window.aipipeBase = baseUrl;
show(profile);
document.querySelector("[data-testid=app-login]").onclick = () => login();
document.querySelector("[data-testid=app-logout]").onclick = () => {
  logout();
  show(getProfile());
};
document.body.dataset.ready = "true";
</script>
</body></html>
"""


def third_party_app(relay_url: str) -> Starlette:
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.replace("RELAY", relay_url))

    return Starlette(routes=[Route("/app.html", page)])
