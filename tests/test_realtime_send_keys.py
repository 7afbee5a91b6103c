"""What one chat send asks Redis: only keys of the sender, of the room and of the client's address, so a
crowd's sends spread over a Redis Cluster's nodes with their users and rooms (a key that every send asked
would pin every send to one node). Checked with MONITOR on a single Redis."""

from __future__ import annotations

import threading

import pytest

from tests.helpers.api import login
from tests.helpers.realtime import FAST, join, send_and_ack

pytestmark = [pytest.mark.single_redis("MONITOR watches one server"), pytest.mark.usefixtures("chat_rooms")]

ROOM = 9
SENDS = 10


def watch(redis_sync, marker: str) -> tuple[threading.Thread, list[list[str]]]:
    """Record every command Redis runs, in a thread, until it runs `ECHO marker`."""
    commands: list[list[str]] = []
    monitor = redis_sync.monitor()
    monitor.__enter__()

    def record() -> None:
        try:
            while True:
                command = monitor.next_command()["command"]
                if command == f"ECHO {marker}":
                    return
                commands.append(command.split(" "))
        finally:
            monitor.__exit__(None, None, None)

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    return thread, commands


async def test_a_send_asks_only_keys_of_its_sender_room_and_address(make_client, redis_sync, settings, sql):
    # Limits high enough for the sends (the rate limits are among what is checked: by user and by address).
    client = await make_client(chat_rate_count=100, chat_rate_address_count=100, **FAST)
    token = await login(client, "sender")
    user_id = sql("SELECT id FROM users WHERE username = 'dev-sender'")[0]["id"]
    ws, _ = await join(client, ROOM, token)
    # The first send reads the sender's standing and lists the room for the history writer: work done once
    # in a while, not per send.
    await send_and_ack(ws, token, ROOM, "first")
    marker = f"end-{settings.redis_prefix}"
    thread, commands = watch(redis_sync, marker)
    await send_and_ack(ws, token, ROOM, *(f"m{n}" for n in range(SENDS)))
    redis_sync.echo(marker)
    thread.join(10)
    assert not thread.is_alive()
    args = (arg.strip('"') for command in commands for arg in command)
    keys = [arg for arg in args if arg.startswith(settings.redis_prefix)]
    whose = (f"{{room:{ROOM}}}", f":{user_id}:", f":{user_id}", "127.0.0.1", token)
    assert keys and [k for k in keys if not any(w in k for w in whose)] == []
