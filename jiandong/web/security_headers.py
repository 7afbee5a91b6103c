"""Headers every answer gets: no `Server` naming our software, `nosniff`; the console's answers also a strict
Content-Security-Policy, no framing and no referrer sent elsewhere."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import hdrs, web

from ..settings import Settings

CONSOLE_PREFIX = "/admin"


def console_policy(settings: Settings) -> str:
    """The console's CSP: its own scripts and styles only (no inline ones), images and videos from itself
    and from the public URL (where stored media are addressed), never framed, forms posted to itself."""
    public = urlsplit(settings.public_url)
    media = f" {public.scheme}://{public.netloc}" if public.netloc else ""
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' data:{media}",
        f"media-src 'self'{media}",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ])


class SecurityHeaders:
    """An on_response_prepare hook rather than a middleware: it also reaches what no middleware sees, the
    websocket upgrade, static and media files, and answers made by the error paths. Headers built once."""

    def __init__(self, settings: Settings) -> None:
        self.console = {
            "Content-Security-Policy": console_policy(settings),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
        }

    async def __call__(self, request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        # aiohttp names itself and Python with their versions: an attacker's shopping list.
        headers.popall(hdrs.SERVER, None)
        path = request.path
        if path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/"):
            headers.update(self.console)
        else:
            headers["X-Content-Type-Options"] = "nosniff"


def setup(app: web.Application, settings: Settings) -> None:
    app.on_response_prepare.append(SecurityHeaders(settings))
