"""Sharded pub/sub on a Redis Cluster: one subscriber connection per node, each read by a task of its own.

redis-py 8.2's ClusterPubSub reads its nodes' connections in turn, splitting a read's wait between
them (`get_sharded_message(timeout=...)`): a message arriving on one node while the reader waits on
another waits for that slice, ~100 ms at a 0.5 s wait over three nodes (measured with
bench/bench_rooms.py), and a shorter wait turns into polling. It also moves channels between nodes
by itself, in a background task, when its slot map changes. Here each node's connection is read by
its own task, which hands every message to the broker at once, and a channel stays on the node it was
subscribed on until the broker subscribes again (broker.py decides when: it watches the slot map).
"""

from __future__ import annotations

import asyncio
import logging
import time
import typing

from redis.asyncio import Redis

logger = logging.getLogger(__name__)

OnMessage = typing.Callable[[dict[str, typing.Any]], None]
OnError = typing.Callable[[BaseException], None]


class ShardSubscriber:
    """SSUBSCRIBE and SUNSUBSCRIBE on the node owning a channel's slot (by `cluster`'s slot map); every message
    read, subscription confirmations and Redis's own `sunsubscribe` included, goes to `on_message`, and the
    first failure of a node's connection to `on_error` (then that node is read no more)."""

    def __init__(self, cluster: typing.Any, options: dict[str, typing.Any], ping_interval: float,
                 on_message: OnMessage, on_error: OnError) -> None:
        self.cluster = cluster
        self.options = options
        self.ping_interval = ping_interval
        self.on_message = on_message
        self.on_error = on_error
        self._nodes: dict[str, tuple[Redis, typing.Any, asyncio.Task[None]]] = {}
        # The node each channel was subscribed on.
        self.nodes_of: dict[bytes, str] = {}

    async def ssubscribe(self, channel: bytes) -> str:
        """Subscribe on the node that owns the channel's slot now; that node's name."""
        node = self.cluster.get_node_from_key(channel)
        entry = self._nodes.get(node.name)
        if entry is None:
            client = Redis(host=node.host, port=node.port, **self.options)
            pubsub = client.pubsub()
            await pubsub.ssubscribe(channel)
            # Read only once a connection exists: the first SSUBSCRIBE makes it.
            task = asyncio.create_task(self._read(node.name, pubsub), name=f"chat-shard-{node.name}")
            self._nodes[node.name] = (client, pubsub, task)
        else:
            await entry[1].ssubscribe(channel)
        self.nodes_of[channel] = node.name
        return typing.cast(str, node.name)

    async def sunsubscribe(self, channel: bytes) -> None:
        name = self.nodes_of.pop(channel, None)
        entry = self._nodes.get(name) if name is not None else None
        if entry is not None:
            await entry[1].sunsubscribe(channel)

    async def _read(self, name: str, pubsub: typing.Any) -> None:
        heard = time.monotonic()
        try:
            while True:
                message = await pubsub.get_message(timeout=self.ping_interval)
                if message is None:
                    # A quiet connection is asked for a sign of life: one that stays silent is half-open.
                    if time.monotonic() - heard > 3 * self.ping_interval:
                        raise ConnectionError(f"no answer from Redis node {name} on the subscriber connection")
                    await pubsub.ping()
                    continue
                heard = time.monotonic()
                self.on_message(message)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.on_error(exc)

    async def aclose(self) -> None:
        entries = list(self._nodes.values())
        self._nodes.clear()
        for _, _, task in entries:
            task.cancel()
        await asyncio.gather(*(task for _, _, task in entries), return_exceptions=True)
        for client, pubsub, _ in entries:
            try:
                await pubsub.aclose()
                await client.aclose()
            except Exception:
                logger.debug("chat: a shard subscriber connection did not close cleanly", exc_info=True)
