"""Every API route that takes a body, from the router, at its own limit (the `max_body` its description
declares): a body of exactly the limit gets past the limit, one byte more is refused with 413 whether its
length is declared or it arrives without one."""

from __future__ import annotations

import io
import typing

from tests.helpers.api import login

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# What the API promises, written here and not read from the code under test: 64 KiB a route, 4 MiB for the
# one that takes a base64 avatar in a form body.
DEFAULT_BODY_LIMIT = 64 * 1024
UPLOAD_BODY_LIMIT = 4 * 1024 * 1024
LIMITS = {"/api/v1/user/save": UPLOAD_BODY_LIMIT}
TOO_LARGE = {"msg": "参数错误: 请求体过大", "error_code": 99999}


def body_routes(app: typing.Any) -> list[tuple[str, str, int]]:
    """(method, path with its ids filled, the limit the API promises) of every API route that may take a body."""
    routes = set()
    for route in app.router.routes():
        resource = route.resource
        if route.method not in BODY_METHODS or resource is None or not resource.canonical.startswith("/api/"):
            continue
        path = resource.canonical.replace("{id}", "1")
        routes.add((route.method, path, LIMITS.get(path, DEFAULT_BODY_LIMIT)))
    return sorted(routes)


def json_of(size: int) -> bytes:
    """A JSON body of exactly `size` bytes."""
    return b'{"p":"' + b"x" * (size - 8) + b'"}'


async def test_every_body_route_takes_its_limit_and_refuses_a_byte_more(client):
    token = await login(client)
    routes = body_routes(client.app)
    # Every route the router has: the upload route among them.
    assert ("POST", "/api/v1/user/save", UPLOAD_BODY_LIMIT) in routes and len(routes) > 20
    wrong = []
    headers = {"token": token, "Content-Type": "application/json"}
    for method, path, limit in routes:
        resp = await client.request(method, path, data=io.BytesIO(json_of(limit)), headers=headers)
        if resp.status == 413:
            wrong.append(f"{method} {path}: {limit} bytes refused")
        resp = await client.request(method, path, data=io.BytesIO(json_of(limit + 1)), headers=headers)
        if (resp.status, await resp.json()) != (413, {**TOO_LARGE, "request_url": path}):
            wrong.append(f"{method} {path}: {limit + 1} bytes answered {resp.status}")

        async def chunks(size: int = limit + 1) -> typing.AsyncIterator[bytes]:
            body = json_of(size)
            for start in range(0, len(body), 65536):
                yield body[start:start + 65536]

        resp = await client.request(method, path, data=chunks(), headers=headers)
        if resp.status not in (413, 415):
            wrong.append(f"{method} {path}: {limit + 1} bytes without a length answered {resp.status}")
    assert wrong == []
