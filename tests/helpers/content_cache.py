"""The content cache's listeners."""

from __future__ import annotations

import redis.cluster

from jiandong.services.content_cache import invalidation_channel


def listeners(redis_sync, settings) -> int:
    """How many processes listen for content invalidations (on a cluster: on the channel's shard)."""
    channel = invalidation_channel(settings)
    if isinstance(redis_sync, redis.cluster.RedisCluster):
        counts = redis_sync.pubsub_shardnumsub(channel, target_nodes=redis_sync.get_node_from_key(channel))
    else:
        counts = redis_sync.pubsub_numsub(channel)
    return dict(counts).get(channel, 0)


def listening(redis_sync, settings, processes: int = 1) -> bool:
    """Whether the apps' cache listeners have subscribed to the invalidation channel."""
    return listeners(redis_sync, settings) >= processes
