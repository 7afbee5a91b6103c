"""The names of a live room on the wire: its Redis pub/sub channels, and its id in the frames the server composes."""

from __future__ import annotations

from ..settings import Settings
from .kv import rkey


def room_channel(settings: Settings, room_id: int) -> str:
    """The channel of a room's server frames (JSON text), the contract for anyone pushing to a room."""
    return rkey(settings, "room", room_id)


def process_channel(settings: Settings, process_id: str) -> str:
    return rkey(settings, "proc", process_id)


def room_text(room_id: int | None) -> str | None:
    """A room id in the frames the server composes (OnLine, LIVE_STATUS, others' LOGIN / LOGOUT): a
    string, as the pages send it and compare it strictly (`data.room_id === room_id`). A sender's
    own frames and their echoes keep the room_id as the sender wrote it."""
    return None if room_id is None else str(room_id)
