"""Which rooms take messages: a room is a published live (the id guest/:id and competition/live give),
looked up through the content cache, so a live published, unpublished or deleted counts at once."""

from __future__ import annotations

import typing

import aiopg

from ..services.content_cache import shape
from ..store import db

if typing.TYPE_CHECKING:
    from ..services.content_cache import ContentCache

# Of the "live" kind, so that every change of a live drops it (services/lives.changed).
OPEN = shape("live", "room_takes_messages", bool)
ROOM_SQL = "SELECT 1 FROM lives WHERE id = %s AND status = 1"


class Rooms:
    """`await rooms.takes_messages(room_id)`: whether the room is a published live."""

    def __init__(self, pool: aiopg.Pool, content: ContentCache) -> None:
        self.pool = pool
        self.content = content

    async def takes_messages(self, room_id: int) -> bool:
        async def load() -> bool:
            return await db.fetchone(self.pool, ROOM_SQL, (room_id,)) is not None

        return await self.content.get(OPEN(room_id), load)
