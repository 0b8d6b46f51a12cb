"""Who the client is, behind reverse proxies: `X-Forwarded-For` / `Forwarded` are believed only
when they come from an address in `AIPIPE_TRUSTED_PROXIES`.

Anyone can send those headers, so they say nothing unless the peer that sent them is a proxy the
operator runs. From a trusted peer, the chain is read from the right (the hop nearest the relay):
trusted proxies are skipped and the first address that is not one is the client. From any other
peer the headers are ignored and the peer is the client. The answer replaces the ASGI scope's
`client`, so the access log, rate limits and the `--dev` loopback rule all see the same address.
`X-Forwarded-Proto` (or `Forwarded: proto=`) from a trusted proxy sets the scheme it was asked in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 32  # a chain longer than this is not one any proxy of ours wrote: stop reading


class TrustedProxies:
    def __init__(self, networks: Iterable[IPNetwork]):
        self.networks = tuple(networks)
        self._known: dict[str, bool] = {}  # address -> trusted (peers repeat: nginx, the LB)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        known = self._known.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                known = False
            else:
                if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                    ip = ip.ipv4_mapped
                known = any(ip in net for net in self.networks)
            if len(self._known) >= 4096:  # bounded: addresses come from the network
                self._known.clear()
            self._known[address] = known
        return known

    def apply(self, scope: Scope) -> None:
        """Set scope["client"] (and scope["scheme"]) from the headers of a trusted peer."""
        client = scope.get("client")
        if not client or not self.trusts(client[0]):
            return
        chain, proto = _forwarded(scope["headers"])
        if not chain:
            return
        scope["aipipe.peer"] = client  # the proxy's own address, for whoever needs it
        for hop in reversed(chain[-MAX_HOPS:]):
            if not self.trusts(hop):
                scope["client"] = (hop, 0)
                break
        else:
            scope["client"] = (chain[0], 0)  # every hop is ours: the first one is the client
        if proto in ("http", "https"):
            scope["scheme"] = proto


def client_is_loopback(scope: Scope) -> bool:
    """Whether the client is on this machine. A request whose forwarding headers (from a peer
    not trusted to write them) name another origin came through a proxy — nginx on loopback,
    say — so its real client is unknown: not loopback."""
    if "aipipe.peer" not in scope:
        chain, _ = _forwarded(scope["headers"])
        if not all(_is_loopback(hop) for hop in chain):
            return False
    client = scope.get("client")
    host = client[0] if client else ""
    return _is_loopback(host) or host == "testclient"  # Starlette's TestClient


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _forwarded(headers: Iterable[tuple[bytes, bytes]]) -> tuple[list[str], str]:
    """The hops (leftmost: the original client) and the protocol. `Forwarded` (RFC 7239) wins
    over `X-Forwarded-For` when both are present; several headers are read in order."""
    xff: list[str] = []
    fwd: list[str] = []
    xproto = fproto = ""
    for key, value in headers:
        if key == b"x-forwarded-for":
            xff += [_address(part) for part in value.decode("latin-1").split(",")]
        elif key == b"forwarded":
            for element in value.decode("latin-1").split(","):
                for pair in element.split(";"):
                    name, _, raw = pair.strip().partition("=")
                    name = name.lower()
                    if name == "for":
                        fwd.append(_address(raw.strip('"')))
                    elif name == "proto" and not fproto:
                        fproto = raw.strip('"').lower()
        elif key == b"x-forwarded-proto" and not xproto:
            xproto = value.decode("latin-1").split(",")[0].strip().lower()
    if fwd:
        return fwd, fproto
    return xff, xproto


def _address(raw: str) -> str:
    """An address as a proxy wrote it, without port or brackets: `[2001:db8::1]:443` →
    `2001:db8::1`, `203.0.113.7:5000` → `203.0.113.7`. Anything else (`unknown`, an obfuscated
    `_hidden`) is kept, bounded, and is no address the relay trusts or calls loopback."""
    raw = raw.strip()
    if raw.startswith("["):
        return raw[1 : raw.find("]")] if "]" in raw else raw[:64]
    if raw.count(":") == 1:
        return raw.partition(":")[0]
    return raw[:64]
