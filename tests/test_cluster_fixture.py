"""The tests' own Redis Cluster (tests/helpers/cluster.py): it starts whole, and its faults (a slot moved
while a room writes to it, a failover, a master killed and started again) leave it whole."""

from __future__ import annotations

import asyncio
import typing

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS as SLOTS

from tests.helpers.cluster import LocalCluster, async_client
from tests.helpers.waiting import until

# The keys of these tests: a room's history stream and its shard channel share the hash tag, so one slot.
STREAM = "jdtest:cluster-fixture:{room:7}:stream"
CHANNEL = "jdtest:cluster-fixture:{room:7}:channel"


@pytest.fixture
async def cluster(redis_cluster: LocalCluster) -> typing.AsyncIterator[LocalCluster]:
    """The session's cluster, healthy again afterwards even if the test broke it: later tests use it too."""
    yield redis_cluster
    if redis_cluster.problem() is not None:
        await redis_cluster.heal()
    client = await async_client(redis_cluster.url)
    try:
        await client.delete(STREAM)
    finally:
        await client.aclose()


def test_three_masters_with_a_replica_each_cover_every_slot(redis_cluster):
    assert redis_cluster.problem() is None
    nodes = redis_cluster.nodes()
    masters = [n for n in nodes if n.is_master]
    assert len(masters) == 3 and len(nodes) == 6
    assert sum(end - start + 1 for m in masters for start, end in m.slots) == SLOTS
    assert sorted(len(redis_cluster.replicas_of(m)) for m in masters) == [1, 1, 1]
    assert redis_cluster.url == "redis://" + ",".join(m.address for m in masters)
    slot = redis_cluster.slot_of(STREAM)
    assert slot == redis_cluster.slot_of(CHANNEL) == redis_cluster.slot_of("{room:7}")
    assert redis_cluster.owner(slot).owns(slot)


async def test_a_slot_moves_while_its_room_writes(cluster):
    client = await async_client(cluster.url, decode_responses=True)
    slot = cluster.slot_of(STREAM)
    source = cluster.owner(slot)
    destination = next(n for n in cluster.nodes() if n.is_master and n.id != source.id)
    written = 0
    stop = asyncio.Event()

    async def room() -> None:
        nonlocal written
        while not stop.is_set():
            await client.xadd(STREAM, {"n": str(written)})
            await client.spublish(CHANNEL, str(written))
            written += 1
            await asyncio.sleep(0.002)

    def wrote(count: int) -> bool:
        if writer.done():
            writer.result()  # the room's error: no write may fail while the slot moves
        return written >= count

    writer = asyncio.create_task(room())
    try:
        await until(lambda: wrote(10), "the room to write")
        await cluster.migrate_slot(slot, to=destination)
        assert cluster.owner(slot).id == destination.id
        moved_at = written
        await until(lambda: wrote(moved_at + 10), "the room to write on after the move")
        stop.set()
        await writer
        # Every entry is there, in order, read through the cluster client (which followed the move).
        entries = await client.xrange(STREAM)
        assert [int(fields["n"]) for _, fields in entries] == list(range(written))
        assert cluster.client(destination).execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 1
        assert cluster.client(source).execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0
    finally:
        stop.set()
        await asyncio.gather(writer, return_exceptions=True)
        await client.aclose()
    assert cluster.problem() is None


async def test_a_failover_swaps_a_master_and_its_replica(cluster):
    client = await async_client(cluster.url, decode_responses=True)
    try:
        await client.xadd(STREAM, {"n": "before"})
        old = cluster.owner(cluster.slot_of(STREAM))
        (replica,) = cluster.replicas_of(old)
        new = await cluster.failover(old)
        assert new.id == replica.id and new.is_master and new.slots == old.slots
        assert [n.master_id for n in cluster.nodes() if n.id == old.id] == [new.id]
        # A graceful failover loses nothing: the replica caught up before it took over.
        assert [fields for _, fields in await client.xrange(STREAM)] == [{"n": "before"}]
    finally:
        await client.aclose()
    assert cluster.problem() is None


async def test_a_killed_master_is_replaced_by_its_replica_and_rejoins_as_a_replica(cluster):
    old = cluster.owner(cluster.slot_of(STREAM))
    (replica,) = cluster.replicas_of(old)
    took = await cluster.kill_master(old)
    # Noticed after the node timeout (2 s), then an election: about 4 s.
    assert 2 < took < 20
    assert cluster.owner(cluster.slot_of(STREAM)).id == replica.id
    assert cluster.problem() is not None  # one node down
    await cluster.restart(old)
    assert [(n.role, n.master_id) for n in cluster.nodes() if n.id == old.id] == [("replica", replica.id)]
    assert cluster.problem() is None
