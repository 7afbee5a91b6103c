"""The client's address behind the proxies we trust: the one every rate limit and WeChat Pay are given."""

from __future__ import annotations

import ipaddress
import typing

from aiohttp import hdrs, web
from aiohttp_remotes.exceptions import UntrustedIP
from aiohttp_remotes.utils import check_ip, parse_trusted_element


class TrustedProxies:
    """X-Forwarded-For believed only as far as the proxies we trust (aiohttp-remotes' address rules).

    A proxy appends the address it saw on the right, so everything left of the last trusted hop is
    the client's own invention: the client is the rightmost address, the peer's included, that is
    not a trusted proxy. Entries left of it are never read, so junk a client sends costs it nothing.
    """

    def __init__(self, proxies: typing.Iterable[str]) -> None:
        self._trusted = parse_trusted_element(proxies)

    def trusts(self, address: str) -> bool:
        try:
            check_ip(self._trusted, ipaddress.ip_address(address))
        except (UntrustedIP, ValueError):
            return False
        return True

    def client(self, peer: str, forwarded_for: typing.Sequence[str]) -> str:
        """The client's address, given the peer's and the X-Forwarded-For headers (left to right)."""
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        address = peer
        while self.trusts(address) and hops:
            hop = hops.pop()
            try:
                address = str(ipaddress.ip_address(hop))
            except ValueError:
                # A trusted proxy only appends addresses: past junk here there is no one to believe.
                break
        return address

    def resolve(self, request: web.Request) -> web.Request:
        """The request, with `request.remote` the client's address (a clone when that is not the peer's)."""
        peer = request.remote
        if peer is None or not self.trusts(peer):
            return request
        client = self.client(peer, request.headers.getall(hdrs.X_FORWARDED_FOR, []))
        return request if client == peer else request.clone(remote=client)
