"""Who is really asking when the agent page sits behind a TLS proxy.

Behind a proxy every request arrives from the proxy's address over plain
http: the Origin check refused the https page, the session cookie lacked
Secure, and the sign-in throttle counted all agents as one address. The
proxy says what the client used in X-Forwarded-For, -Proto and -Host, but
anyone can send those headers: they count only on a connection from a
``trusted_proxies`` address, so a client can neither choose the address the
throttle counts nor claim https.

``Forwarded`` (RFC 7239) is not read: the proxies documented in the README
set the X-Forwarded headers, and a header the proxy does not overwrite is
one the client writes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from aiohttp import web

from ivr.config import ConfigError

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


class TrustedProxies:
    """The proxies whose X-Forwarded headers are believed: none unless configured."""

    def __init__(self, networks: Iterable[Network] = ()):
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        """From the ``trusted_proxies`` setting; a wrong entry is refused, not skipped, so it stops the start-up."""
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"trusted_proxies: '{entry}' is neither an IP address nor a network") from None
        return cls(networks)

    def effective(self, request: web.Request) -> web.Request:
        """The request with the scheme, host and client address the client used, when a trusted proxy says so."""
        if not self.trusts(parse_address(request.remote)):
            return request
        headers = request.headers
        changes = {"remote": self.client_address(str(request.remote), headers.getall("X-Forwarded-For", []))}
        proto = last_value(headers.getall("X-Forwarded-Proto", [])).lower()
        if proto in ("http", "https"):
            changes["scheme"] = proto
        host = last_value(headers.getall("X-Forwarded-Host", []))
        if HOST.fullmatch(host):
            changes["host"] = host
        return request.clone(**changes)  # type: ignore[arg-type]  # scheme/host/remote: all str

    def client_address(self, peer: str, forwarded_for: list[str]) -> str:
        """The right-most X-Forwarded-For address that is not one of our proxies.

        Each proxy appends the address it was connected from, so entries are
        trustworthy from the right up to the first one that is not a proxy;
        anything left of it the client may have written. An entry that is not
        an address stops the walk at the last proxy: counted together is safer
        than counted as whatever the client wrote.
        """
        address = peer
        for hop in reversed([hop for value in forwarded_for for hop in value.split(",")]):
            parsed = parse_address(hop)
            if parsed is None:
                break
            address = str(parsed)
            if not self.trusts(parsed):
                break
        return address

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)


def parse_address(text: str | None) -> Address | None:
    """An IP address as proxies write it: bare, ``v4:port`` or ``[v6]:port``; IPv4-mapped IPv6 as IPv4."""
    if text is None:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def last_value(values: list[str]) -> str:
    """The right-most of comma-separated header values: the one the nearest proxy set or appended."""
    items = [item.strip() for value in values for item in value.split(",")]
    return items[-1] if items else ""
