"""The baseline: bare aiohttp handlers answering fixed JSON bodies, no middlewares, no database.

    python bench/bare_server.py --port P --route GET /api/v1/x body.json [--route POST /api/v1/y other.json ...]
    python bench/bare_server.py --port P --body-file body.json     (GET /api/v1/user/info)

A body file ending in .xml is answered as it is, as text/xml (the WeChat Pay notification answer).
"""

from __future__ import annotations

import argparse
import json
import os
import typing

import orjson
from aiohttp import web

from jiandong.lib import eventloop


def make_app(routes: typing.Iterable[tuple[str, str, typing.Any]]) -> web.Application:
    app = web.Application()
    for method, path, body in routes:
        app.router.add_route(method, path, _handler(body))
    return app


def _handler(body: typing.Any) -> typing.Callable[[web.Request], typing.Awaitable[web.Response]]:
    async def answer(request: web.Request) -> web.Response:
        if request.body_exists:
            # A request body is read, as any real handler of a POST does.
            await request.read()
        if isinstance(body, XmlText):
            return web.Response(text=body, content_type="text/xml")
        # Encoded per request, as the real handlers do.
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    return answer


class XmlText(str):
    """A body answered as text/xml."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--route", nargs=3, action="append", default=[], metavar=("METHOD", "PATH", "BODY_FILE"),
                        help="answer METHOD PATH with the JSON in BODY_FILE (repeatable)")
    parser.add_argument("--body-file", help="JSON file with the body of GET /api/v1/user/info")
    args = parser.parse_args()
    routes = [tuple(route) for route in args.route]
    if args.body_file:
        routes.append(("GET", "/api/v1/user/info", args.body_file))
    if not routes:
        parser.error("give --route or --body-file")
    loaded = []
    for method, path, body_file in routes:
        with open(body_file, encoding="utf-8") as f:
            loaded.append((method, path, XmlText(f.read()) if body_file.endswith(".xml") else json.load(f)))
    web.run_app(make_app(loaded), host="127.0.0.1", port=args.port, access_log=None, print=None,
               # asyncio's unless the benchmark says otherwise (--bare-event-loop).
               loop=eventloop.new_loop(os.environ.get("JIANDONG_EVENT_LOOP", "auto")))


if __name__ == "__main__":
    main()
