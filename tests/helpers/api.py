"""Talking to the API under test as a user of the H5 app does."""

from __future__ import annotations

import typing


async def login(client: typing.Any, code: str = "dev-code-1") -> str:
    """Log in through endpoint 1 (dev WeChat unless the client's app has an appid); the token."""
    resp = await client.post("/api/v1/token/user", data={"code": code})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


async def call(client, method: str, path: str, token: str | None = None, **data: typing.Any):
    """(status, JSON body) of a request as the pages send it (form body, token header)."""
    headers = {"token": token} if token else {}
    if method == "GET":
        resp = await client.get(path, params=data, headers=headers)
    else:
        resp = await client.post(path, data=data, headers=headers)
    return resp.status, await resp.json()


async def get_json(client, path: str, token: str, status: int = 200, method: str = "GET", **kwargs) -> typing.Any:
    resp = await client.request(method, path, headers={"token": token}, **kwargs)
    assert resp.status == status, await resp.text()
    return await resp.json()
