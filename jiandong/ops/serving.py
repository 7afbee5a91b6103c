"""The HTTP server: its listening sockets, an idle and header-read timeout, a cap on open connections,
and one warning line (not a traceback) for a request aiohttp cannot parse."""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import socket
import typing

from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestHandler

from ..errors import ParameterError
from ..lib import encoding
from ..lib.logthrottle import JUNK
from ..settings import Settings

logger = logging.getLogger(__name__)

# File descriptors kept for what is not a client connection: PostgreSQL, Redis, logs, media files.
RESERVED_FDS = 256
# Bytes taken from a socket at a time, and buffered for a request body before reading pauses. asyncio
# reads 256 KiB at a time and aiohttp buffers 128 KiB: up to ~400 KiB a connection before any handler
# has looked at the request, which 200 clients sending big bodies turned into 75 MB.
READ_SIZE = 16 * 1024
BODY_BUFFER = 16 * 1024


class SmallReads(asyncio.BufferedProtocol):
    """A connection's aiohttp handler, fed READ_SIZE bytes at a time.

    One buffer serves every connection: the loop fills it and hands it over before the next read.
    """

    __slots__ = ("handler",)
    _buffer = memoryview(bytearray(READ_SIZE))

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.handler.connection_made(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.handler.data_received(bytes(self._buffer[:nbytes]))

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.handler.connection_lost(exc)

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()


class PortInUse(OSError):
    """A port this server should listen on is taken (by another server, most likely a running copy)."""


def listen(host: str, ports: typing.Iterable[int], backlog: int = 1024) -> list[socket.socket]:
    """Listening sockets on every address of `host` for each port, bound once by the process that starts.

    Without SO_REUSEPORT: a second server started on a port in use fails here, before anything else,
    instead of sharing the port with the first (and with its own Redis, say, answering half the
    requests). Workers inherit these sockets and accept on them, as under gunicorn.
    """
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                sockets.append(sock)
                # Lets a restart bind while the last run's connections linger in TIME_WAIT; on Linux it
                # never lets two listeners share a port.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    sock.bind(address)
                except OSError as exc:
                    raise PortInUse(f"cannot listen on {host or '*'} port {port}: {exc.strerror}") from None
                sock.listen(backlog)
                sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class QuietRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering a request it cannot parse with the API's 400 body and one
    warning line, where aiohttp logs an ERROR with its parser's traceback (and echoes the bad bytes)."""

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, BadHttpMessage):
            return _unbranded(super().handle_error(request, status, exc, message))
        # Junk from the internet: held back past one line per kind per 10 s (logthrottle).
        logger.warning("malformed request from %s: %s", request.remote, _first_line(exc), extra=JUNK)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was sent already")
        error = ParameterError("参数错误: 请求格式不正确")
        body = {"msg": error.msg, "error_code": error.error_code, "request_url": ""}
        status = exc.code if 400 <= exc.code < 500 else 400
        response = _Unbranded(status=status, body=encoding.dumps(body), content_type="application/json")
        response.force_close()
        return response


class _Unbranded(web.Response):
    """An answer made before any application saw the request, so no on_response_prepare hook runs for it
    (web.security_headers): it drops the `Server` header aiohttp adds while preparing the headers itself."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall(hdrs.SERVER, None)
        self.headers[hdrs.X_CONTENT_TYPE_OPTIONS] = "nosniff"


def _unbranded(response: web.StreamResponse) -> web.StreamResponse:
    """aiohttp's own error answer, as an _Unbranded one."""
    if not isinstance(response, web.Response):
        return response
    copy = _Unbranded(status=response.status, body=response.body, headers=response.headers)
    copy.force_close()
    return copy


def _first_line(exc: BadHttpMessage) -> str:
    """The parser's complaint without the request bytes aiohttp quotes after it, on the lines below or on the
    same line (a line too long: `Got more than 8190 bytes when reading: bytearray(b'/path?token=...')`): a
    query or a header may carry a secret."""
    lines = [line.strip() for line in str(exc.message).splitlines() if line.strip()]
    return _QUOTED_BYTES.sub("", lines[0]).rstrip(":") if lines else type(exc).__name__


# Where a parser's message starts quoting what it read: bytes or a bytearray's repr.
_QUOTED_BYTES = re.compile(r"""[:\s]*(?:bytearray\()?b['"].*$""")


class GuardedServer(web.Server):
    """aiohttp's server, holding at most `max_connections` connections.

    Past the cap the connection idle the longest (waiting for its first request, or between two) is
    closed, so a flood of idle connections can never lock real clients out; only when every connection
    is busy (a request, a chat socket) is the new one closed instead.
    """

    def __init__(self, handler: typing.Any, *, max_connections: int, **kwargs: typing.Any) -> None:
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections
        # Connections not in a request, the longest idle first (a dict keeps insertion order).
        self._idle: dict[RequestHandler, None] = {}
        serve = self.request_handler

        async def tracked(request: web.BaseRequest) -> web.StreamResponse:
            protocol = request.protocol
            self._idle.pop(protocol, None)
            try:
                return await serve(request)
            finally:
                if protocol.transport is not None:
                    self._idle[protocol] = None

        self.request_handler = tracked

    def __call__(self) -> SmallReads:  # type: ignore[override]
        return SmallReads(QuietRequestHandler(self, loop=self._loop, **self._kwargs))

    def connection_made(self, handler: RequestHandler, transport: typing.Any) -> None:
        super().connection_made(handler, transport)
        self._idle[handler] = None
        if len(self.connections) > self.max_connections:
            victim = next(iter(self._idle), handler)
            self._idle.pop(victim, None)
            logger.warning("connection limit (%d) reached: closed the longest-idle connection", self.max_connections,
                           extra=JUNK)
            victim.force_close()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self._idle.pop(handler, None)
        super().connection_lost(handler, exc)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose server is a GuardedServer with the settings' idle timeout and connection cap.

    aiohttp's keep-alive timer also runs from the moment a connection opens, and closes a connection
    still waiting for (the rest of) a request's headers: the idle timeout is the header-read timeout too.
    """

    def __init__(self, app: web.Application, settings: Settings, **kwargs: typing.Any) -> None:
        kwargs.setdefault("keepalive_timeout", settings.idle_timeout)
        kwargs.setdefault("read_bufsize", BODY_BUFFER)
        kwargs.setdefault("access_log_class", web.AccessLogger)
        super().__init__(app, **kwargs)
        self._max_connections = settings.max_connections
        self._server_kwargs = kwargs

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()
        return GuardedServer(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            max_connections=self._max_connections,
            **self._server_kwargs,
        )


def fit_open_files(max_connections: int) -> int:
    """Raise this process's open-file limit to fit the cap if the hard limit allows; the cap that fits.

    A process out of file descriptors cannot accept at all (and asyncio logs every try): a cap below
    the limit keeps it answering.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = new_soft
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitted = max(16, soft - RESERVED_FDS)
        logger.warning("open-file limit %d: at most %d connections instead of %d", soft, fitted, max_connections)
        return fitted
    return max_connections
