"""Which rooms take messages: a room is a published live (the id guest/:id and competition/live give),
looked up once and then kept by this process for a while."""

from __future__ import annotations

import time
import typing

from .. import db

ROOM_SQL = "SELECT 1 FROM lives WHERE id = %s AND status = 1"
# A live published a moment ago is taken within this many seconds of an attempt that found none.
MISSING_TTL = 5.0
# Room ids are the client's choice: past this many, what is kept starts over rather than grows.
MAX_KEPT = 10_000


class Rooms:
    """`await rooms.takes_messages(room_id)`: whether the room is a published live (at most `ttl` seconds
    old for one found, MISSING_TTL for one not found)."""

    def __init__(self, pool: typing.Any, ttl: float) -> None:
        self.pool = pool
        self.ttl = ttl
        self._kept: dict[int, tuple[bool, float]] = {}

    async def takes_messages(self, room_id: int) -> bool:
        now = time.monotonic()
        kept = self._kept.get(room_id)
        if kept is not None and kept[1] > now:
            return kept[0]
        found = await db.fetchone(self.pool, ROOM_SQL, (room_id,)) is not None
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[room_id] = (found, now + (self.ttl if found else MISSING_TTL))
        return found
