"""`/proxy/<url>`: fetch a public web resource for a browser app (a CORS helper).

Safe by construction: only http(s); the host is resolved and every address must be public
(no loopback, private, link-local, multicast, reserved — nor an IPv6 form that wraps such an IPv4
address: mapped, NAT64, 6to4, IPv4-compatible); the connection goes to the vetted address
(so DNS cannot change between check and use), with the original Host and TLS server name;
redirects are followed by hand and checked the same way; the caller's Authorization and cookies are
never forwarded; time and size are bounded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
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


# A host name -> its addresses, as strings; the app's `resolver` (tests give a stand-in).
Resolver = Callable[[str, int], Awaitable[list[str]]]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the IPv4 address is the last 32 bits
# Never public, whatever Python's tables say: IPv4-compatible (::a.b.c.d, deprecated), local-use
# NAT64 (RFC 8215) and site-local (deprecated fec0::/10).
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in ("::/96", "64:ff9b:1::/48", "fec0::/10"))


def is_public(address: str) -> bool:
    """Whether a connection to `address` reaches the public internet. IPv6 forms that carry
    an IPv4 address (mapped, NAT64, 6to4, Teredo) are judged by the IPv4 address they reach."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        elif ip.teredo or any(ip in net for net in _NOT_PUBLIC):
            return False
        else:
            inner = ip.sixtofour or (
                ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
            )
            if inner is not None and not is_public(str(inner)):
                return False
    return ip.is_global and not ip.is_multicast


async def system_resolve(host: str, port: int) -> list[str]:
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
    resolve: Resolver = request.app.state.resolver
    # latin-1 bytes, as received: httpx refuses non-ASCII str header values.
    headers = {
        k.encode(): v.encode("latin-1") for k, v in request.headers.items() if k in FORWARD_HEADERS
    }
    try:
        # A whole-fetch deadline: per-read timeouts alone let a server drip bytes for hours.
        async with asyncio.timeout(TOTAL_TIMEOUT):
            return await _follow(request.app.state.http, request.method, raw, headers, body, resolve)
    except TimeoutError as e:
        raise UpstreamTimeout(f"The fetch took longer than {TOTAL_TIMEOUT:g} s") from e


async def _follow(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[bytes, bytes],
    body: bytes,
    resolve: Resolver,
) -> Response:
    for _ in range(MAX_REDIRECTS + 1):
        status, got, content = await _fetch(client, method, url, headers, body, resolve)
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
    resolve: Resolver,
) -> tuple[int, httpx.Headers, bytes]:
    parts, host, port = _target(url)
    try:
        addresses = await resolve(host, port)
    except (OSError, UnicodeError) as e:
        raise BadRequest(f"Cannot resolve {host}") from e
    if not addresses or not all(_allowed(a) for a in addresses):
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


def _allowed(address: str) -> bool:
    try:
        return is_public(address)
    except ValueError:  # an address ipaddress cannot read is not one we can vouch for
        return False
