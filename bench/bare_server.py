"""The baseline: a bare aiohttp handler answering a fixed JSON body, no middlewares, no database."""

from __future__ import annotations

import argparse
import json

import orjson
from aiohttp import web


def make_app(body: dict) -> web.Application:
    async def user_info(request: web.Request) -> web.Response:
        # Encoded per request, as the real handler does.
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/user/info", user_info)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", required=True, help="JSON file with the body to answer")
    args = parser.parse_args()
    with open(args.body_file, encoding="utf-8") as f:
        body = json.load(f)
    web.run_app(make_app(body), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
