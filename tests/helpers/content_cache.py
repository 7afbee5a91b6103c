"""The content cache's listeners."""

from __future__ import annotations

from jiandong.store.kv import rkey


def listening(redis_sync, settings, processes: int = 1) -> bool:
    """Whether the apps' cache listeners have subscribed to the invalidation channel."""
    channel = rkey(settings, "content", "changed")
    return dict(redis_sync.pubsub_numsub(channel)).get(channel, 0) >= processes
