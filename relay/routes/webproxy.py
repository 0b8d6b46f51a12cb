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
from urllib.parse import SplitResult, urljoin, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response

from relay.auth.access import require_user
from relay.errors import BadRequest, Forbidden, PayloadTooLarge, UpstreamError, UpstreamTimeout
from relay.forward.call import read_body

MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = 20.0  # connect, and each read
TOTAL_TIMEOUT = 60.0  # the whole fetch, redirects included
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
    # The path as sent (still percent-encoded), so an encoded '?', '#' or '/' in the target URL
    # stays part of it.
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    raw = raw_path.decode("latin-1").removeprefix("/proxy/")
    if request.url.query:
        raw += "?" + request.url.query
    body = await read_body(request, MAX_BYTES)
    allow: Callable[[str], bool] = getattr(request.app.state, "proxy_allows", is_public)
    # latin-1 bytes, as received: httpx refuses non-ASCII str header values.
    headers = {
        k.encode(): v.encode("latin-1") for k, v in request.headers.items() if k in FORWARD_HEADERS
    }
    try:
        # A whole-fetch deadline: per-read timeouts alone let a server drip bytes for hours.
        async with asyncio.timeout(TOTAL_TIMEOUT):
            return await _follow(request.app.state.http, request.method, raw, headers, body, allow)
    except TimeoutError as e:
        raise UpstreamTimeout(f"The fetch took longer than {TOTAL_TIMEOUT:g} s") from e


async def _follow(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[bytes, bytes],
    body: bytes,
    allow: Callable[[str], bool],
) -> Response:
    for _ in range(MAX_REDIRECTS + 1):
        status, got, content = await _fetch(client, method, url, headers, body, allow)
        if status in (301, 302, 303, 307, 308) and "location" in got:
            url = urljoin(url, got["location"])
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, body = "GET", b""  # as browsers do
            continue
        out = {k: v for k, v in got.items() if k in KEEP_RESPONSE}
        return Response(content, status_code=status, headers=out)
    raise UpstreamError(f"More than {MAX_REDIRECTS} redirects")


async def _fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[bytes, bytes],
    body: bytes,
    allow: Callable[[str], bool],
) -> tuple[int, httpx.Headers, bytes]:
    parts, host, port = _target(url)
    try:
        addresses = await resolve(host, port)
    except (OSError, UnicodeError) as e:
        raise BadRequest(f"Cannot resolve {host}") from e
    if not addresses or not all(_allowed(allow, a) for a in addresses):
        raise Forbidden(f"{host} is not a public address", code="forbidden_target")
    ip = addresses[0]
    netloc = f"[{ip}]" if ":" in ip else ip
    pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
    request = client.build_request(
        method,
        pinned,
        headers={
            **headers,
            b"host": _host_header(host, parts.port).encode(),
            b"accept-encoding": b"identity",
        },
        content=body or None,
        extensions={"sni_hostname": host, "timeout": httpx.Timeout(TIMEOUT).as_dict()},
    )
    try:
        resp = await client.send(request, stream=True)
    except httpx.TimeoutException as e:
        raise UpstreamTimeout(f"{host} did not answer in time") from e
    except httpx.HTTPError as e:
        raise UpstreamError(f"Could not fetch {host} ({type(e).__name__})") from e
    try:
        size, chunks = 0, []
        async for chunk in resp.aiter_raw():
            size += len(chunk)
            if size > MAX_BYTES:
                raise PayloadTooLarge(f"{host} sent more than {MAX_BYTES // 2**20} MB")
            chunks.append(chunk)
    except httpx.HTTPError as e:
        raise UpstreamError(f"{host} broke off ({type(e).__name__})") from e
    finally:
        await resp.aclose()
    return resp.status_code, resp.headers, b"".join(chunks)


def _target(url: str) -> tuple[SplitResult, str, int]:
    """The URL's parts, its host as ASCII (IDNA) and its port; anything malformed is a 400."""
    usage = "Only absolute http(s) URLs can be proxied: /proxy/https://example.com/…"
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as e:
        raise BadRequest(f"{usage} ({e})") from e
    if parts.scheme not in ("http", "https") or not host:
        raise BadRequest(usage)
    if parts.username or parts.password:
        raise BadRequest("URLs with credentials cannot be proxied")
    return parts, host, port


def _host_header(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal
    return host if port is None else f"{host}:{port}"


def _allowed(allow: Callable[[str], bool], address: str) -> bool:
    try:
        return allow(address)
    except ValueError:  # an address ipaddress cannot read is not one we can vouch for
        return False
