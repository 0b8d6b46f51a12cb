"""`/proxy/<url>`: fetch a public web resource for a browser app (a CORS helper).

Safe by construction: only http(s); the host is resolved and every address must be public
(no loopback, private, link-local, multicast, reserved); the connection goes to the vetted address
(so DNS cannot change between check and use), with the original Host and TLS server name;
redirects are followed by hand and checked the same way; the caller's Authorization and cookies are
never forwarded; time and size are bounded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response

from relay.access import require_user
from relay.errors import BadRequest, Forbidden, PayloadTooLarge, UpstreamError, UpstreamTimeout

MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = 20.0
FORWARD_HEADERS = ("accept", "accept-language", "content-type", "user-agent")
KEEP_RESPONSE = ("content-type", "cache-control", "etag", "last-modified", "content-language")


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def web_proxy(request: Request) -> Response:
    require_user(request)
    raw = request.url.path.removeprefix("/proxy/")
    if request.url.query:
        raw += "?" + request.url.query
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise PayloadTooLarge("Request body too large for /proxy")
    allow: Callable[[str], bool] = getattr(request.app.state, "proxy_allows", is_public)
    headers = {k: v for k, v in request.headers.items() if k in FORWARD_HEADERS}
    url = raw
    for _ in range(MAX_REDIRECTS + 1):
        status, got, content = await _fetch(
            request.app.state.http, request.method, url, headers, body, allow
        )
        if status in (301, 302, 303, 307, 308) and "location" in got:
            url = urljoin(url, got["location"])
            if status == 303:
                body = b""
            continue
        out = {k: v for k, v in got.items() if k in KEEP_RESPONSE}
        return Response(content, status_code=status, headers=out)
    raise UpstreamError(f"More than {MAX_REDIRECTS} redirects")


async def _fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    allow: Callable[[str], bool],
) -> tuple[int, httpx.Headers, bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("Only absolute http(s) URLs can be proxied: /proxy/https://example.com/…")
    if parts.username or parts.password:
        raise BadRequest("URLs with credentials cannot be proxied")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await resolve(parts.hostname, port)
    except OSError as e:
        raise BadRequest(f"Cannot resolve {parts.hostname}") from e
    if not addresses or not all(allow(a) for a in addresses):
        raise Forbidden(f"{parts.hostname} is not a public address", code="forbidden_target")
    ip = addresses[0]
    netloc = f"[{ip}]" if ":" in ip else ip
    pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
    request = client.build_request(
        method,
        pinned,
        headers={**headers, "host": parts.netloc.rpartition("@")[2], "accept-encoding": "identity"},
        content=body or None,
        extensions={"sni_hostname": parts.hostname, "timeout": httpx.Timeout(TIMEOUT).as_dict()},
    )
    try:
        resp = await client.send(request, stream=True)
    except httpx.TimeoutException as e:
        raise UpstreamTimeout(f"{parts.hostname} did not answer in time") from e
    except httpx.HTTPError as e:
        raise UpstreamError(f"Could not fetch {parts.hostname} ({type(e).__name__})") from e
    try:
        size, chunks = 0, []
        async for chunk in resp.aiter_raw():
            size += len(chunk)
            if size > MAX_BYTES:
                raise PayloadTooLarge(f"{parts.hostname} sent more than {MAX_BYTES // 2**20} MB")
            chunks.append(chunk)
    except httpx.HTTPError as e:
        raise UpstreamError(f"{parts.hostname} broke off ({type(e).__name__})") from e
    finally:
        await resp.aclose()
    return resp.status_code, resp.headers, b"".join(chunks)
