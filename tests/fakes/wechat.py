"""A fake api.weixin.qq.com: web OAuth (code exchange, userinfo), basic access_token and jsapi_ticket.

Follows the documented protocol: HTTP 200 with a JSON body, errors as {"errcode", "errmsg"}, the
sns endpoints answering with content-type text/plain as WeChat does. Tests register OAuth codes,
queue failures per path and read the call counts.

It keeps the reference's lifetimes (§1.1, §1.2, §2.1) on a clock tests move with `advance`, so none
sleeps: an OAuth code unused for 5 minutes answers 42003, a web-auth access_token older than its
expires_in (7200 s) answers 42001 at sns/userinfo, and so does a basic access_token at getticket.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import secrets
import time
import typing

from aiohttp import web

TOKEN_PATH = "/cgi-bin/token"
TICKET_PATH = "/cgi-bin/ticket/getticket"
CODE_PATH = "/sns/oauth2/access_token"
USERINFO_PATH = "/sns/userinfo"
# §1.1: an OAuth code expires if unused for 5 minutes; §1.2, §2.1: tokens live expires_in seconds.
CODE_LIFETIME = 300
TOKEN_LIFETIME = 7200

# A failure mode: an errcode to answer with, or one of these words.
HTTP_500 = "http500"
SLOW = "slow"
NOT_JSON = "not_json"

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    40164: "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist",
    41008: "missing code",
    42001: "access_token expired",
    42003: "code expired",
    45009: "reach max api daily quota limit",
    48001: "api unauthorized",
}


@dataclasses.dataclass
class Grant:
    openid: str
    scope: str
    profile: dict[str, typing.Any]
    snapshot: bool = False
    unionid: str | None = None
    used: bool = False
    issued_at: float = 0.0


class FakeWeChat:
    def __init__(self, appid: str = "wxfake0123456789", secret: str = "fake-secret") -> None:
        self.appid = appid
        self.secret = secret
        self.base_url = ""
        self.calls: collections.Counter[str] = collections.Counter()
        self.failures: dict[str, collections.deque[int | str]] = collections.defaultdict(collections.deque)
        # Extra latency on the token endpoint, so concurrent refreshes really overlap.
        self.token_delay = 0.0
        self.slow_seconds = 1.0
        self.codes: dict[str, Grant] = {}
        self.web_tokens: dict[str, Grant] = {}
        self.access_tokens: list[str] = []
        self.tickets: list[str] = []
        # When each web-auth and basic access_token stops being accepted (on this fake's clock).
        self.expires_at: dict[str, float] = {}
        self.offset = 0.0

    def now(self) -> float:
        """WeChat's clock: the real time plus what tests `advance`d it by."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def _expired(self, token: str) -> bool:
        return self.now() >= self.expires_at.get(token, float("inf"))

    def add_code(
        self,
        code: str,
        openid: str,
        scope: str = "snsapi_userinfo",
        *,
        snapshot: bool = False,
        unionid: str | None = None,
        **profile: typing.Any,
    ) -> None:
        """Register an OAuth code as if the user had just authorized the page."""
        self.codes[code] = Grant(openid, scope, profile, snapshot, unionid, issued_at=self.now())

    def fail(self, path: str, mode: int | str, times: int = 1) -> None:
        """The next `times` calls to `path` fail with `mode` (an errcode, HTTP_500, SLOW or NOT_JSON)."""
        self.failures[path].extend([mode] * times)

    @property
    def current_token(self) -> str | None:
        return self.access_tokens[-1] if self.access_tokens else None

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_and_fail])
        app.router.add_get(TOKEN_PATH, self.token)
        app.router.add_get(TICKET_PATH, self.getticket)
        app.router.add_get(CODE_PATH, self.code_to_token)
        app.router.add_get(USERINFO_PATH, self.userinfo)
        return app

    @web.middleware
    async def _count_and_fail(
        self, request: web.Request, handler: typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.calls[request.path] += 1
        queue = self.failures.get(request.path)
        if queue:
            mode = queue.popleft()
            if mode == HTTP_500:
                return web.Response(status=500, text="<html>500 Internal Server Error</html>", content_type="text/html")
            if mode == NOT_JSON:
                return web.Response(text="<html>gateway</html>", content_type="text/html")
            if mode == SLOW:
                await asyncio.sleep(self.slow_seconds)
                return _error(-1)
            assert isinstance(mode, int)
            return _error(mode)
        return await handler(request)

    def _check_app(self, request: web.Request) -> web.Response | None:
        if request.query.get("appid") != self.appid:
            return _error(40013)
        if request.query.get("secret") != self.secret:
            return _error(40125)
        return None

    async def token(self, request: web.Request) -> web.Response:
        if request.query.get("grant_type") != "client_credential":
            return _error(40002)
        if (bad := self._check_app(request)) is not None:
            return bad
        await asyncio.sleep(self.token_delay)
        # A new token replaces the previous one (the short overlap WeChat grants is not modelled).
        token = "AT_" + secrets.token_urlsafe(48)
        self.access_tokens.append(token)
        self.expires_at[token] = self.now() + TOKEN_LIFETIME
        return _ok({"access_token": token, "expires_in": TOKEN_LIFETIME}, sns=False)

    async def getticket(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if token != self.current_token:
            return _error(40001 if token else 41001)
        if self._expired(token):
            return _error(42001)
        if request.query.get("type") != "jsapi":
            return _error(40097)
        ticket = "TICKET_" + secrets.token_urlsafe(32)
        self.tickets.append(ticket)
        return _ok({"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": 7200}, sns=False)

    async def code_to_token(self, request: web.Request) -> web.Response:
        if (bad := self._check_app(request)) is not None:
            return bad
        if request.query.get("grant_type") != "authorization_code":
            return _error(40002)
        code = request.query.get("code", "")
        if not code:
            return _error(41008)
        grant = self.codes.get(code)
        if grant is None:
            return _error(40029)
        if grant.used:
            return _error(40163)
        if self.now() - grant.issued_at >= CODE_LIFETIME:
            return _error(42003)
        grant.used = True
        web_token = "WAT_" + secrets.token_urlsafe(32)
        self.web_tokens[web_token] = grant
        self.expires_at[web_token] = self.now() + TOKEN_LIFETIME
        body: dict[str, typing.Any] = {
            "access_token": web_token,
            "expires_in": TOKEN_LIFETIME,
            "refresh_token": "RT_" + secrets.token_urlsafe(32),
            "openid": grant.openid,
            "scope": grant.scope,
        }
        if grant.snapshot:
            body["is_snapshotuser"] = 1
        if grant.unionid and "snsapi_userinfo" in grant.scope:
            body["unionid"] = grant.unionid
        return _ok(body)

    async def userinfo(self, request: web.Request) -> web.Response:
        web_token = request.query.get("access_token", "")
        grant = self.web_tokens.get(web_token)
        if grant is None:
            return _error(40001)
        if self._expired(web_token):
            return _error(42001)
        if request.query.get("openid") != grant.openid:
            return _error(40003)
        if "snsapi_userinfo" not in grant.scope.split(","):
            return _error(48001)
        body = {
            "openid": grant.openid,
            "nickname": "",
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": "",
            "privilege": [],
            **grant.profile,
        }
        if grant.unionid:
            body["unionid"] = grant.unionid
        return _ok(body)


def _ok(body: dict[str, typing.Any], sns: bool = True) -> web.Response:
    # WeChat serves the sns answers as text/plain; clients must parse the body whatever the type.
    return web.Response(
        text=json.dumps(body, ensure_ascii=False), content_type="text/plain" if sns else "application/json"
    )


def _error(errcode: int) -> web.Response:
    errmsg = ERRMSG.get(errcode, "error")
    return _ok({"errcode": errcode, "errmsg": f"{errmsg}, rid: {secrets.token_hex(4)}-{secrets.token_hex(4)}"})


async def serve(aiohttp_server: typing.Any, fake: FakeWeChat) -> FakeWeChat:
    """Start the fake on 127.0.0.1 and set its `base_url` (for the `wechat_api_url` setting)."""
    server = await aiohttp_server(fake.make_app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


def settings_for(fake: FakeWeChat, **overrides: typing.Any) -> dict[str, typing.Any]:
    """`make_client(**settings_for(fake))`: an app that talks to the fake."""
    return {"wechat_appid": fake.appid, "wechat_secret": fake.secret, "wechat_api_url": fake.base_url, **overrides}
