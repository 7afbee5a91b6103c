"""Helpers of the console tests: staff accounts, signing in, forms with their CSRF token."""

from __future__ import annotations

import io
import re
import typing

from PIL import Image

from jiandong.services.admins import hash_password

PASSWORD = "correct horse 42"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_admin(sql: typing.Callable[..., typing.Any], username: str = "boss", role: str = "owner",
              active: bool = True) -> int:
    return sql("INSERT INTO admins (username, password_hash, role, is_active) VALUES (%s, %s, %s, %s) RETURNING id",
               username, hash_password(PASSWORD), role, active)[0]["id"]


async def csrf(client: typing.Any, path: str = "/admin/login") -> str:
    resp = await client.get(path)
    match = CSRF_RE.search(await resp.text())
    assert match, f"no CSRF token on {path} ({resp.status})"
    return match.group(1)


async def sign_in(client: typing.Any, username: str = "boss", password: str = PASSWORD) -> typing.Any:
    token = await csrf(client)
    return await client.post("/admin/login", data={"username": username, "password": password, "csrf_token": token},
                             allow_redirects=False)


async def post_form(client: typing.Any, path: str, data: dict[str, typing.Any] | None = None,
                    token_from: str | None = None, **kwargs: typing.Any) -> typing.Any:
    """POST a form with the session's CSRF token (read from `token_from`, by default the home page)."""
    token = await csrf(client, token_from or "/admin/")
    return await client.post(path, data={**(data or {}), "csrf_token": token}, allow_redirects=False, **kwargs)


def png(width: int = 64, height: int = 40, colour: tuple[int, int, int] = (200, 40, 50)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()
