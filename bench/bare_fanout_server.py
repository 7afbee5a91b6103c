"""The fan-out baseline: a bare aiohttp websocket server that re-sends each message to every socket.

    python bench/bare_fanout_server.py --port P

What a first version of a chat server does, in a plain loop over the sockets: no Redis, no
presence, no history, no checks. It speaks just enough of the chat protocol for bench_fanout.py:
a LOGIN (or ?room_id=) is echoed with "myself":true, and a SEND_ALL goes to every other socket
as it came, and back to its sender with "myself":true.
"""

from __future__ import annotations

import argparse
import os

from aiohttp import WSMsgType, web

from jiandong.lib import eventloop

LOGIN_ECHO = '{"type":"LOGIN","myself":true}'
sockets_key = web.AppKey("sockets", set[web.WebSocketResponse])


async def chat(request: web.Request) -> web.WebSocketResponse:
    sockets = request.app[sockets_key]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sockets.add(ws)
    try:
        if request.query.get("room_id"):
            await ws.send_str(LOGIN_ECHO)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            if '"SEND_ALL"' in msg.data:
                for other in tuple(sockets):
                    if other is not ws:
                        await other.send_str(msg.data)
                await ws.send_str(msg.data[:-1] + ',"myself":true}')
            elif '"LOGIN"' in msg.data:
                await ws.send_str(LOGIN_ECHO)
    finally:
        sockets.discard(ws)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[sockets_key] = set()
    app.router.add_get("/ws", chat)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None,
               # asyncio's unless the benchmark says otherwise (--bare-event-loop).
               loop=eventloop.new_loop(os.environ.get("JIANDONG_EVENT_LOOP", "auto")))


if __name__ == "__main__":
    main()
