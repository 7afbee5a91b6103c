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
import re
import secrets
import time
import typing

from aiohttp import web

TOKEN_PATH = "/cgi-bin/token"
TICKET_PATH = "/cgi-bin/ticket/getticket"
CODE_PATH = "/sns/oauth2/access_token"
USERINFO_PATH = "/sns/userinfo"
TEMPLATE_PATH = "/cgi-bin/message/template/send"
# wechat-notify.md §1: client_msg_id de-duplicates per openid for 10 minutes; 100,000 sends a day by default.
DEDUPE_WINDOW = 600
DAILY_QUOTA = 100_000
# §2 "Value rules per key type", enforced since 2023-05-04 on 类目模板 keys with 47003.
_CJK = r"\u4e00-\u9fff"
VALUE_RULES: dict[str, typing.Callable[[str], bool]] = {
    "thing": lambda v: 0 < len(v) <= 20 and not re.search(r"[\x00-\x1f]", v),
    "number": lambda v: bool(re.fullmatch(r"\d{1,32}(\.\d+)?", v)),
    "letter": lambda v: bool(re.fullmatch(r"[A-Za-z]{1,32}", v)),
    "character_string": lambda v: 0 < len(v) <= 32 and not re.search(f"[{_CJK}]", v) and v.isascii(),
    "time": lambda v: bool(re.fullmatch(r"(\d{4}年\d{1,2}月\d{1,2}日 )?\d{1,2}:\d{2}", v)),
    "date": lambda v: bool(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日( \d{1,2}:\d{2})?", v)),
    "amount": lambda v: bool(re.fullmatch(r"[¥￥$]?\d{1,10}(\.\d{1,2})?元?", v)),
    "phone_number": lambda v: bool(re.fullmatch(r"[\d+\-() ]{1,17}", v)),
    "name": lambda v: 0 < len(v) <= (20 if v.isascii() else 10),
    "phrase": lambda v: bool(re.fullmatch(f"[{_CJK}]{{1,5}}", v)),
    "keyword": lambda v: True,  # 历史模板: cut to 20 characters, never refused
}


@dataclasses.dataclass
class SentTemplate:
    openid: str
    template_id: str
    data: dict[str, str]
    url: str
    client_msg_id: str
    msgid: int
    at: float


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
    40037: "invalid template_id",
    41001: "access_token missing",
    43004: "require subscribe",
    47001: "data format error",
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
        # Template messages: the account's templates (id -> its keys), who does not follow the account,
        # openids of another account, what was delivered, and the day's count against the quota.
        self.templates: dict[str, tuple[str, ...]] = {}
        self.unfollowed: set[str] = set()
        self.foreign: set[str] = set()
        self.delivered: list[SentTemplate] = []
        self.daily_quota = DAILY_QUOTA
        self.template_delay = 0.0
        self._by_client_msg_id: dict[tuple[str, str], SentTemplate] = {}
        self._per_day: collections.Counter[int] = collections.Counter()

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
        app.router.add_post(TEMPLATE_PATH, self.send_template)
        return app

    def add_template(self, template_id: str, *keys: str) -> None:
        """A 类目模板 the account picked in its back office, with its typed keys (`thing1`, `time2`…)."""
        self.templates[template_id] = keys

    def delivered_to(self, openid: str) -> list[SentTemplate]:
        return [m for m in self.delivered if m.openid == openid]

    async def send_template(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if token != self.current_token:
            return _error(40001 if token else 41001)
        if self._expired(token):
            return _error(42001)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(47001)
        if not isinstance(body, dict):
            return _error(47001)
        openid, template_id = body.get("touser"), body.get("template_id")
        if not isinstance(openid, str) or not openid or openid in self.foreign:
            return _error(40003)
        if template_id not in self.templates:
            return _error(40037)
        data = body.get("data")
        if not isinstance(data, dict):
            return _error(47001)
        values: dict[str, str] = {}
        for key, item in data.items():
            value = item.get("value") if isinstance(item, dict) else None
            kind = re.sub(r"\d+$", "", key)
            rule = VALUE_RULES.get(kind)
            if not isinstance(value, str) or (rule is not None and not rule(value)):
                return _ok({"errcode": 47003, "errmsg": f"argument invalid! data.{key}.value invalid"}, sns=False)
            values[key] = value
        if openid in self.unfollowed:
            return _error(43004)
        client_msg_id = body.get("client_msg_id") or ""
        now = self.now()
        earlier = self._by_client_msg_id.get((openid, client_msg_id)) if client_msg_id else None
        if earlier is not None and now - earlier.at < DEDUPE_WINDOW:
            # One message per openid + client_msg_id within 10 minutes: the repeat is answered as a success
            # with the first one's msgid (inference: the reference does not give the answer).
            return _ok({"errcode": 0, "errmsg": "ok", "msgid": earlier.msgid}, sns=False)
        # The quota's day is China's (inference, as in the sender).
        day = int((now + 8 * 3600) // 86400)
        if self._per_day[day] >= self.daily_quota:
            return _error(45009)
        self._per_day[day] += 1
        message = SentTemplate(openid, template_id, values, str(body.get("url") or ""), client_msg_id,
                               len(self.delivered) + 1_000_000, now)
        self.delivered.append(message)
        if client_msg_id:
            self._by_client_msg_id[(openid, client_msg_id)] = message
        # Delivered before the answer leaves: a caller that gives up waiting has sent it all the same.
        await asyncio.sleep(self.template_delay)
        return _ok({"errcode": 0, "errmsg": "ok", "msgid": message.msgid}, sns=False)

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
