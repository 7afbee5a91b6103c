"""The names of a live room on the wire: its Redis channels and keys, and its id in the frames the server composes.

A room's channel, history stream and its writer's mark share the hash tag `{room:<id>}`: on a Redis
Cluster they live on one shard, so the script that appends a message and publishes it touches one node,
and a room's traffic stays on the shard that owns its slot. A process's own channel has its own tag.
"""

from __future__ import annotations

from ..settings import Settings
from .kv import rkey, tagged


def room_channel(settings: Settings, room_id: int) -> str:
    """The channel of a room's server frames (JSON text), the contract for anyone pushing to a room:
    `<prefix>{room:<id>}` (PUBLISH on a single Redis, SPUBLISH on a cluster)."""
    return tagged(settings, ("room", room_id))


def room_stream(settings: Settings, room_id: int) -> str:
    """The room's chat history stream (history.py), in the room's slot."""
    return tagged(settings, ("room", room_id), "history")


def room_stored(settings: Settings, room_id: int) -> str:
    """The id of the last entry of the room's stream stored in PostgreSQL, in the room's slot."""
    return tagged(settings, ("room", room_id), "history", "stored")


def history_rooms(settings: Settings) -> str:
    """The set of rooms whose stream may hold entries to store (the history writer walks it)."""
    return rkey(settings, "chat", "history", "rooms")


def lobby_channel(settings: Settings) -> str:
    """Every room's frames, `<room id> <frame>`, for processes holding old no-room sockets (legacy mode)."""
    return tagged(settings, ("lobby",))


def lobby_listeners(settings: Settings) -> str:
    """The processes holding no-room sockets, with the time (s) until which each said so (a sorted set)."""
    return rkey(settings, "chat", "lobby")


def process_channel(settings: Settings, process_id: str) -> str:
    return tagged(settings, ("proc", process_id))


def room_text(room_id: int | None) -> str | None:
    """A room id in the frames the server composes (OnLine, LIVE_STATUS, others' LOGIN / LOGOUT): a
    string, as the pages send it and compare it strictly (`data.room_id === room_id`). A sender's
    own frames and their echoes keep the room_id as the sender wrote it."""
    return None if room_id is None else str(room_id)
