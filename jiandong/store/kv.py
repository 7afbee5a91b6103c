"""Redis: the client context, single server or cluster, and key naming (every key and channel carries the
configured prefix).

`JIANDONG_REDIS_URL` names one Redis or a Redis Cluster: `redis://host:port` or, for a cluster, any of its
nodes, several as seeds separated by commas (`redis://10.0.0.1:7000,10.0.0.2:7000`). Which one it is comes
from the server itself (`INFO cluster`, `cluster_enabled:1`). On a cluster every command that touches
several keys, and every script, stays within one hash tag (`tagged`): a room's stream, channel and counters
under `{room:<id>}`, a user's tokens under `{user:<id>}`, and so on. Messages travel as sharded pub/sub
there (SPUBLISH, Redis 7), so a room's traffic stays on the shard that owns its slot; a single Redis uses
plain PUBLISH (the embedded server is 6.2, which has no SPUBLISH).
"""

from __future__ import annotations

import logging
import typing
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ..keys import redis_key, settings_key
from ..settings import Settings, mask_url_password

logger = logging.getLogger(__name__)

REDIS_MAX_CONNECTIONS = 100
# Per node. redis-py's cluster client has no blocking pool: past its size a command fails at once
# (MaxConnectionsError, a 503), so a burst is given room instead of a queue.
REDIS_CLUSTER_MAX_CONNECTIONS = 1000


def rkey(settings: Settings, *parts: typing.Any) -> str:
    """`<prefix>part:part:...`: the one way keys and channels are named."""
    return settings.redis_prefix + ":".join(str(p) for p in parts)


def tag(*parts: typing.Any) -> str:
    """A hash tag, `{part:part}`: keys holding the same one live in the same cluster slot."""
    return "{" + ":".join(str(p) for p in parts) + "}"


def tagged(settings: Settings, owner: tuple[typing.Any, ...], *parts: typing.Any) -> str:
    """`<prefix>{owner}:part:...`: a key that may be used together with the owner's other keys (one slot).

    The tag leaves the prefix out, so it hashes the same in every deployment; keys stay apart by prefix.
    """
    return rkey(settings, tag(*owner), *parts)


def is_cluster(client: typing.Any) -> bool:
    """Whether `client` talks to a Redis Cluster (then pub/sub is sharded)."""
    return isinstance(client, RedisCluster)


async def publish(client: typing.Any, channel: str | bytes, data: str | bytes) -> int:
    """PUBLISH on a single Redis, SPUBLISH on a cluster; the receivers counted (on a cluster: on one node)."""
    if isinstance(client, RedisCluster):
        return int(await client.spublish(channel, data))
    return int(await client.publish(channel, data))


def publish_command(client: typing.Any) -> str:
    """The publish command a script calls (its channel must share the script's hash tag on a cluster)."""
    return "SPUBLISH" if isinstance(client, RedisCluster) else "PUBLISH"


def connection_options(settings: Settings) -> dict[str, typing.Any]:
    """What every Redis connection of ours is opened with: a command fails within redis_timeout.

    redis-py 8 would otherwise retry a failed command ten times with backoff, so a Redis that is
    down or frozen would hold each request far longer than the timeout. One immediate retry on a
    broken connection is kept: after a Redis restart each pooled connection fails once.
    """
    return {
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


def seed_urls(url: str) -> list[str]:
    """The URLs of a Redis URL's hosts: `redis://a:1,b:2/0` gives `redis://a:1/0` and `redis://b:2/0`."""
    parts = urlsplit(url)
    if parts.scheme == "unix" or "," not in parts.netloc:
        return [url]
    userinfo, _, hosts = parts.netloc.rpartition("@")
    return [urlunsplit(parts._replace(netloc=f"{userinfo}@{host}" if userinfo else host))
            for host in hosts.split(",") if host]


async def detect_cluster(url: str, settings: Settings) -> bool:
    """Whether the Redis at `url` (its first seed that answers) is a cluster node; raises RedisError if none does."""
    error: Exception | None = None
    for seed in seed_urls(url):
        probe = Redis.from_url(seed, **connection_options(settings))
        try:
            info = await probe.info("cluster")
            return bool(int(info.get("cluster_enabled", 0)))
        except RedisConnectionError as exc:
            error = exc
        finally:
            await probe.aclose()
    raise error or RedisConnectionError(f"no Redis at {url}")


def cluster_client(url: str, settings: Settings, **options: typing.Any) -> RedisCluster:
    """A cluster client over the URL's seeds, failing as fast as our single-server client does.

    redis-py would retry a command on a moved or failed node ten times with backoff; three at once cover
    a failover's MOVED and a refreshed slot map without holding a request past the timeout for long.
    """
    seeds = seed_urls(url)
    first = urlsplit(seeds[0])
    nodes = [ClusterNode(urlsplit(s).hostname or "127.0.0.1", urlsplit(s).port or 6379) for s in seeds]
    return RedisCluster(
        startup_nodes=nodes,
        username=first.username,
        password=first.password,
        ssl=first.scheme == "rediss",
        **{**connection_options(settings), "retry": Retry(NoBackoff(), 3), **options},
    )


async def refresh_topology(client: typing.Any) -> None:
    """Read a cluster's slot map again, now: redis-py keeps it until one of its own commands meets a MOVED or a
    dead node, which a subscriber or a publisher through a replica may never do (redis-cluster.md §1). Its
    one public way, `initialize()`, lives on the client's internal nodes manager: wrapped here, in one place."""
    await typing.cast(RedisCluster, client).nodes_manager.initialize()


async def open_client(settings: Settings, cluster: bool, **options: typing.Any) -> Redis:
    """A client of settings.redis_url (a cluster client when `cluster`), connected.

    Typed as the single-server client: the cluster client answers the same commands, and the code
    that must tell them apart asks `is_cluster`.
    """
    if cluster:
        client: typing.Any = cluster_client(settings.redis_url, settings, **options)
        await client.initialize()
        return typing.cast(Redis, client)
    client = Redis.from_url(settings.redis_url, **{**connection_options(settings), **options})
    return typing.cast(Redis, client)


async def redis_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    if await detect_cluster(settings.redis_url, settings):
        client = await open_client(settings, True, decode_responses=True,
                                   max_connections=REDIS_CLUSTER_MAX_CONNECTIONS)
        # The start-up log says what the URL turned out to be: the chat then uses sharded pub/sub.
        logger.info("Redis Cluster of %d masters at %s: sharded pub/sub for the chat",
                    len(typing.cast(RedisCluster, client).get_primaries()), mask_url_password(settings.redis_url))
    else:
        # A blocking pool: past its size a command waits (up to redis_timeout) for a free connection
        # instead of failing with "Too many connections" at once.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=settings.redis_timeout,
            decode_responses=True,
            health_check_interval=30,
            **connection_options(settings),
        )
        client = Redis.from_pool(pool)
    await client.ping()
    app[redis_key] = client
    yield
    await client.aclose()
