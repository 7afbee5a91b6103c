"""The fan-out comparison: python-socketio with its Redis manager, as a chat server built on it would be.

    python bench/socketio_fanout_server.py --port P --redis-url redis://... --channel NAME

Every socket joins one room when it connects; a `send_all` event goes to the room's other sockets through
the Redis manager (published to Redis, delivered by the listener of each process, this one included) and
back to its sender with "myself": true, which is what bench_fanout.py counts as the acknowledgement.
Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import os
import typing

import socketio
from aiohttp import web

from jiandong.lib import eventloop

ROOM = "room-1"


def make_app(redis_url: str, channel: str) -> web.Application:
    manager = socketio.AsyncRedisManager(redis_url, channel=channel)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, cors_allowed_origins="*")

    @sio.event
    async def connect(sid: str, environ: dict[str, typing.Any]) -> None:
        await sio.enter_room(sid, ROOM)

    @sio.on("send_all")
    async def send_all(sid: str, data: dict[str, typing.Any]) -> None:
        await sio.emit("message", data, room=ROOM, skip_sid=sid)
        await sio.emit("message", {**data, "myself": True}, to=sid)

    app = web.Application()
    sio.attach(app)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel", required=True, help="the Redis manager's channel (a name of this run's own)")
    args = parser.parse_args()
    web.run_app(make_app(args.redis_url, args.channel), host="127.0.0.1", port=args.port, access_log=None,
                print=None, loop=eventloop.new_loop(os.environ.get("JIANDONG_EVENT_LOOP", "auto")))


if __name__ == "__main__":
    main()
