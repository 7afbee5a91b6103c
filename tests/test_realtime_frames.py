"""The broadcast frame built once per message: the bytes aiohttp's own writer would send, read by a real client."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp._websocket.writer import WebSocketWriter

from jiandong.realtime.hub import text_frame

# Each length form of the header (7-bit, 16-bit, 64-bit) at and around its edges, with multi-byte text.
TEXTS = ["", "a", "x" * 125, "x" * 126, "直播" * 100, "y" * 65535, "y" * 65536, "z" * 70000]


class Recorder:
    """Just enough of a transport for the writer: it keeps what is written."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


async def aiohttp_frame(data: bytes) -> bytes:
    transport = Recorder()
    writer = WebSocketWriter(object(), transport, use_mask=False, limit=2**30)  # type: ignore[arg-type]
    await writer.send_frame(data, WSMsgType.TEXT)
    return bytes(transport.data)


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: f"{len(t.encode())}B")
async def test_text_frame_equals_the_aiohttp_writer(text):
    data = text.encode()
    assert text_frame(data) == await aiohttp_frame(data)


async def test_a_client_reads_prebuilt_frames_written_to_the_transport(aiohttp_server):
    """Written straight to the transport, between frames of aiohttp's own writer, every frame
    arrives whole and in order."""

    async def handler(request):
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        for text in TEXTS:
            request.transport.write(text_frame(text.encode()))
        await ws.send_str("end")
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session, session.ws_connect(server.make_url("/")) as ws:
        received = [await ws.receive() for _ in range(len(TEXTS) + 1)]
        await ws.close()
    assert [m.type for m in received] == [WSMsgType.TEXT] * (len(TEXTS) + 1)
    assert [m.data for m in received] == [*TEXTS, "end"]
