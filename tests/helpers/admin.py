"""Helpers of the console tests: staff accounts, signing in, forms with their CSRF token."""

from __future__ import annotations

import asyncio
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


def session_keys(redis_sync: typing.Any, settings: typing.Any) -> list[str]:
    """The console sessions stored in Redis (this test's key prefix)."""
    return list(redis_sync.scan_iter(match=f"{settings.redis_prefix}admin_session:*", count=1000))


def uploads_on_disk(settings: typing.Any) -> list[str]:
    """The temporary upload files under <media>/.uploads/ (a form's file parts while it is read)."""
    uploads = settings.media_path / ".uploads"
    return sorted(p.name for p in uploads.iterdir()) if uploads.exists() else []


def multipart_start(boundary: str, fields: dict[str, str], file_field: str, file_bytes: bytes) -> bytes:
    """The start of a multipart body: text fields, then a file part whose content goes on past `file_bytes`."""
    out = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items())
    return out + (f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="big.mp4"\r\n'
                  f"Content-Type: application/octet-stream\r\n\r\n").encode() + file_bytes


class Unfinished:
    """A POST that announces `length` bytes and sends only its start, its connection kept open: the server's
    answer is read while most of the body was never sent (so it cannot have been read)."""

    def __init__(self, client: typing.Any, path: str, headers: dict[str, str], start: bytes, length: int) -> None:
        self.client, self.path, self.headers, self.start, self.length = client, path, headers, start, length
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.StreamReader | None = None

    async def send(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.client.host, self.client.port)
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.client.host}:{self.client.port}",
                 f"Content-Length: {self.length}", *(f"{k}: {v}" for k, v in self.headers.items()), "", ""]
        self.writer.write("\r\n".join(lines).encode() + self.start)
        await self.writer.drain()

    async def answer(self, wait: float = 15.0) -> tuple[int, dict[str, str]]:
        """The status and headers answered, without sending the rest (fails after `wait` s of silence)."""
        assert self.reader is not None
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), wait)
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
        return int(status_line.split()[1]), headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def cookie_header(client: typing.Any) -> str:
    """The test client's cookies as a Cookie header (for a request sent by hand)."""
    return "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
