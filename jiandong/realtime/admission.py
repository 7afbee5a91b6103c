"""Who may hold a chat socket in this process: per client address, per signed-in user, and the chat's
share of the process's connections.

Watching needs no token and a websocket is never idle, so without these one client could take every
connection slot (and every viewer it opened would be counted). The counts are this process's, like the
connection cap they protect (`max_connections`): behind N workers a client may hold N times as many.
"""

from __future__ import annotations

import collections
import ipaddress

from ..errors import ServiceUnavailable, Throttled
from ..settings import Settings

# IPv6 hands a subscriber a whole /64 (often more): counted per address, a client would take a new one
# for each socket.
IPV6_GROUP = 64


def address_group(address: str) -> str:
    """The key an address is counted under: an IPv4 address itself (also written IPv4-mapped), an IPv6
    address's /64 network; anything unparsable as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_GROUP), strict=False))
    return str(ip)


class AddressFull(Throttled):
    msg = "连接过多，请稍后再试"


class UserFull(Throttled):
    msg = "同一账号打开的聊天连接过多，请关闭其他页面后再试"


class ChatFull(ServiceUnavailable):
    msg = "聊天室连接已满，请稍后再试"


class Admission:
    """This process's chat sockets by address and by user, each checked before it is counted."""

    def __init__(self, settings: Settings) -> None:
        self.max_total = max(1, int(settings.max_connections * settings.chat_connection_share))
        self.max_per_address = settings.chat_max_per_address
        self.max_per_user = settings.chat_max_per_user
        self.total = 0
        self.addresses: collections.Counter[str] = collections.Counter()
        self.users: collections.Counter[int] = collections.Counter()

    def admit(self, group: str) -> None:
        """Count a socket of `group` (an address_group) before its upgrade; ChatFull (503) past the chat's share
        of the process, AddressFull (429) past the address's cap. Every admit is paired with a release."""
        if self.total >= self.max_total:
            raise ChatFull()
        if self.addresses[group] >= self.max_per_address:
            raise AddressFull()
        self.total += 1
        self.addresses[group] += 1

    def release(self, group: str) -> None:
        self.total -= 1
        self.addresses[group] -= 1
        if self.addresses[group] <= 0:
            del self.addresses[group]

    def sign_in(self, previous: int | None, user_id: int) -> None:
        """A socket now speaks for `user_id` (it was `previous`'s, or nobody's); UserFull past the user's cap."""
        if previous == user_id:
            return
        if self.users[user_id] >= self.max_per_user:
            raise UserFull()
        self.users[user_id] += 1
        if previous is not None:
            self.sign_out(previous)

    def sign_out(self, user_id: int) -> None:
        self.users[user_id] -= 1
        if self.users[user_id] <= 0:
            del self.users[user_id]
