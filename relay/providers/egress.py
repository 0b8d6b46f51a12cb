"""The egress proxy for provider calls: `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`, read the way
curl, Go and httpx read them, as data the upstream client (http1.py) consults once per target.

- `https://` targets go through `HTTPS_PROXY` with `CONNECT host:port` (the TLS session is the
  relay's own, end to end with the provider); `http://` targets go through `HTTP_PROXY` as
  absolute-form requests (`GET http://host/path`).
- The proxy URL is `http://[user:password@]host[:port]` (port 80 when absent, as in httpx and Go);
  credentials are sent as `Proxy-Authorization: Basic`, never logged.
- `NO_PROXY`: a list (commas and/or spaces) of `*`, host names (`example.com` also covers its
  subdomains; a leading `.` or `*.` means the same), IP addresses, CIDR networks (`10.0.0.0/8`),
  each optionally with `:port`. Loopback (`localhost`, 127.0.0.0/8, ::1) is never proxied, as in Go.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import unquote, urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_REPLY = 16 * 1024  # the head of a proxy's answer to CONNECT
P = TypeVar("P", bound=asyncio.Protocol)


class EgressError(ValueError):
    """A proxy variable that cannot be used; the message names it."""


class ProxyRefused(Exception):
    """The egress proxy answered CONNECT with something other than 2xx (or with nonsense)."""


@dataclass(frozen=True, slots=True)
class ProxyServer:
    host: str
    port: int
    authorization: bytes | None = field(default=None, repr=False)  # b"Basic …"

    def __str__(self) -> str:  # for messages: never the credentials
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class _Exempt:
    host: str | None = None  # a domain (suffix match) ...
    network: IPNetwork | None = None  # ... or addresses
    port: int | None = None


@dataclass(frozen=True)
class Egress:
    https: ProxyServer | None = None
    http: ProxyServer | None = None
    exempt: tuple[_Exempt, ...] = ()
    exempt_all: bool = False

    def proxy_for(self, scheme: str, host: str, port: int) -> ProxyServer | None:
        """The proxy a connection to host:port goes through, or None for a direct one."""
        server = self.https if scheme == "https" else self.http
        if server is None or self.exempt_all or _is_loopback(host):
            return None
        host = host.lower().rstrip(".")
        address = _address(host)
        for rule in self.exempt:
            if rule.port is not None and rule.port != port:
                continue
            if rule.network is not None:
                if address is not None and address in rule.network:
                    return None
            elif rule.host is not None and (host == rule.host or host.endswith("." + rule.host)):
                return None
        return server


def parse_egress(https_proxy: str, http_proxy: str, no_proxy: str) -> Egress | None:
    """From the variables' values (empty: unset); None when no proxy is set."""
    https = _server(https_proxy, "HTTPS_PROXY") if https_proxy else None
    http = _server(http_proxy, "HTTP_PROXY") if http_proxy else None
    if https is None and http is None:
        return None
    entries = no_proxy.replace(",", " ").split()
    if "*" in entries:
        return Egress(https, http, exempt_all=True)
    return Egress(https, http, tuple(_exempt(entry) for entry in entries))


def _server(value: str, name: str) -> ProxyServer:
    url = value if "://" in value else "http://" + value  # curl's reading of a bare host:port
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError as e:
        raise EgressError(f"{name}: not a proxy URL ({e})") from e
    if parts.scheme != "http":
        raise EgressError(
            f"{name}: only http:// proxies are supported (got {parts.scheme}://); the provider's "
            "TLS still runs end to end through CONNECT"
        )
    if not parts.hostname:
        raise EgressError(f"{name}: the proxy URL has no host")
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        auth = b"Basic " + base64.b64encode(pair)
    return ProxyServer(parts.hostname, port, auth)


def _exempt(entry: str) -> _Exempt:
    entry = entry.lower()
    port: int | None = None
    host = entry
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        port = _port(rest.removeprefix(":")) if rest else None
    elif entry.count(":") == 1:  # name:port or v4:port (a bare v6 address has several colons)
        host, _, raw_port = entry.partition(":")
        port = _port(raw_port)
    try:
        return _Exempt(network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass
    host = host.removeprefix("*.").removeprefix(".").rstrip(".")
    if not host:
        raise EgressError(f"NO_PROXY: {entry!r} names no host")
    return _Exempt(host=host, port=port)


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise EgressError(f"NO_PROXY: {raw!r} is not a port")
    return int(raw)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = _address(host)
    return address is not None and address.is_loopback


# -- through the proxy ------------------------------------------------------------------------
class _ConnectReply(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT: a status line and headers, no body."""

    def __init__(self) -> None:
        self.buffer = b""
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end >= 0:
            if end + 4 != len(self.buffer):  # nothing may come before the TLS handshake
                self.done.set_exception(ProxyRefused("The egress proxy sent data after its CONNECT reply"))
            else:
                self.done.set_result(self.buffer[:end])
        elif len(self.buffer) > MAX_REPLY:
            self.done.set_exception(ProxyRefused("The egress proxy's CONNECT reply is too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"the egress proxy closed the connection ({exc})"))


async def open_tunnel(
    via: ProxyServer,
    host: str,
    port: int,
    server_name: str,
    context: ssl.SSLContext,
    protocol: Callable[[], P],
) -> P:
    """`CONNECT host:port` through the proxy, then TLS with the target inside the tunnel (the
    proxy sees the host name and encrypted bytes only). Returns the protocol, connected."""
    loop = asyncio.get_running_loop()
    transport, reply = await loop.create_connection(_ConnectReply, via.host, via.port)
    try:
        authority = (f"[{host}]" if ":" in host else host) + f":{port}"
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n".encode()
        if via.authorization:
            head += b"Proxy-Authorization: " + via.authorization + b"\r\n"
        transport.write(head + b"\r\n")
        status = (await reply.done).split(b"\r\n", 1)[0].decode("latin-1")
        parts = status.split(" ", 2)
        if len(parts) < 2 or not (parts[1].isdigit() and parts[1].startswith("2")):
            raise ProxyRefused(f"The egress proxy {via} refused CONNECT {authority}: {status[:200]}")
        connected = protocol()
        tls = await loop.start_tls(transport, connected, context, server_hostname=server_name)
    except BaseException:
        transport.close()
        raise
    if tls is None:
        raise ConnectionError("the egress proxy's connection closed during the TLS handshake")
    connected.connection_made(tls)  # start_tls hands over the transport without calling this
    return connected
