"""WeChat Official Account: web OAuth login and the JS-SDK ticket; a dev stand-in when no appid is set."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import secrets
import time
import typing

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from ..errors import AuthorizationFailed, WeChatUnavailable
from ..keys import client_session_key, redis_key, settings_key, wechat_key
from ..lib import encoding
from ..lib.cleaning import clean_text, is_http_url
from ..settings import Settings
from ..store.kv import rkey

logger = logging.getLogger(__name__)

# A cached token or ticket is refreshed when less than this many seconds remain.
REFRESH_MARGIN = 300
# Processes that find another one refreshing poll this often, for at most this long.
LOCK_POLL = 0.05
LOCK_WAIT = 5.0

# errcodes that mean the OAuth code (or the grant behind it) is no good: the user must authorize again.
CODE_ERRORS = {
    40029: "授权失败: code 无效或已被使用",
    40163: "授权失败: code 已被使用",
    42003: "授权失败: code 已过期，请重新授权",
    41008: "授权失败: 缺少 code",
    40030: "授权失败: 授权已失效，请重新授权",
    42002: "授权失败: 授权已失效，请重新授权",
    50001: "授权失败: 用户未授权获取用户信息",
}
# errcodes that mean our own credentials or the account's setup are wrong, not the user's code.
CONFIG_ERRORS = {40001, 40002, 40013, 40125, 40164, 48001}
QUOTA_ERRORS = {45009, 45011}
# errcodes from an API call that mean the basic access_token is stale: refetch it once and retry.
TOKEN_REJECTED = {40001, 40014, 42001}

# Compare-and-delete, so a process only releases (or invalidates) what is still its own value.
_DELETE_IF_EQUALS = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclasses.dataclass(frozen=True)
class WeChatProfile:
    openid: str
    unionid: str | None = None
    nickname: str = ""
    headimgurl: str = ""
    sex: int = 0
    country: str = ""
    province: str = ""
    city: str = ""


class WeChat(typing.Protocol):
    appid: str

    async def profile_for_code(self, code: str) -> WeChatProfile:
        """Exchange an OAuth code; AuthorizationFailed (10008) or WeChatUnavailable (50000) on failure."""

    async def jsapi_ticket(self) -> str:
        """The current jsapi_ticket (cached across processes)."""

    async def send_template(self, openid: str, template_id: str, data: typing.Mapping[str, str], url: str,
                            client_msg_id: str) -> str:
        """Send a template message; its msgid. TemplateRefused or WeChatUnavailable on failure."""


def jsapi_sign_string(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    """The JS-SDK string to sign: the four fields in ASCII order, raw values, the URL without its fragment."""
    return f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url.split('#', 1)[0]}"


def jsapi_signature(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    """The `wx.config` signature: sha1 hex of the string to sign."""
    return hashlib.sha1(jsapi_sign_string(ticket, noncestr, timestamp, url).encode()).hexdigest()


def dev_openid(code: str) -> str:
    """The openid a development login code stands for."""
    return f"dev-{hashlib.sha256(code.encode()).hexdigest()[:28]}"


class DevWeChat:
    """Development identities: any code is a login, the same code always the same user."""

    appid = ""

    async def profile_for_code(self, code: str) -> WeChatProfile:
        return WeChatProfile(openid=dev_openid(code), nickname=f"dev-{code[:20]}")

    async def jsapi_ticket(self) -> str:
        return "dev-jsapi-ticket"

    async def send_template(self, openid: str, template_id: str, data: typing.Mapping[str, str], url: str,
                            client_msg_id: str) -> str:
        # No Official Account: the notice is written to the log (and kept for the console's notice page).
        logger.warning("notice %s (no WeChat AppID: not sent): %s", client_msg_id, " / ".join(data.values()))
        return f"dev-{client_msg_id}"


class TemplateRefused(Exception):
    """WeChat answered a template message with an errcode (wechat-notify.md §2 "Errors")."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class _ApiError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


# Every field of a WeChat answer is read through here: a nickname may hold anything a phone can type.
_text = clean_text


def _avatar_url(value: typing.Any) -> str:
    url = clean_text(value)
    return url if is_http_url(url) else ""


class RealWeChat:
    """The WeChat API over the shared client session; token and ticket shared by all processes via Redis."""

    def __init__(self, session: aiohttp.ClientSession, redis: Redis, settings: Settings) -> None:
        self.appid = settings.wechat_appid
        self._secret = settings.wechat_secret
        self._base = settings.wechat_api_url.rstrip("/")
        self._session = session
        self._redis = redis
        self._settings = settings
        # The lock outlives the slowest refresh (up to four calls, each bounded by the client timeout).
        self._lock_ms = int((4 * settings.http_timeout + 5) * 1000)
        self._delete_if_equals = redis.register_script(_DELETE_IF_EQUALS)

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, typing.Any]:
        """GET a WeChat API; the JSON object, _ApiError on an errcode, WeChatUnavailable otherwise."""
        # Exceptions are logged by type only: their text may carry the URL, and the URL the secret.
        try:
            async with self._session.get(self._base + path, params=params) as resp:
                status = resp.status
                body = await resp.read()
        except asyncio.TimeoutError:
            logger.warning("WeChat %s timed out", path)
            raise WeChatUnavailable("微信服务器响应超时，请稍后再试") from None
        except aiohttp.ClientError as exc:
            logger.warning("WeChat %s unreachable: %s", path, type(exc).__name__)
            raise WeChatUnavailable("无法连接微信服务器，请稍后再试") from None
        return self._answer(path, status, body)

    @staticmethod
    def _answer(path: str, status: int, body: bytes) -> dict[str, typing.Any]:
        """The JSON object of an answer; _ApiError on an errcode, WeChatUnavailable for anything else."""
        if status != 200:
            logger.warning("WeChat %s answered HTTP %s", path, status)
            raise WeChatUnavailable(f"微信服务器异常 (HTTP {status})")
        try:
            data = encoding.loads(body)
        except encoding.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            logger.warning("WeChat %s answered a body that is not a JSON object (%d bytes)", path, len(body))
            raise WeChatUnavailable("微信服务器返回了无法识别的数据")
        errcode = data.get("errcode") or 0
        if errcode:
            errmsg = _text(data.get("errmsg"))
            logger.warning("WeChat %s errcode %s: %s", path, errcode, errmsg)
            raise _ApiError(errcode if isinstance(errcode, int) else -1, errmsg)
        return data

    def _unavailable(self, error: _ApiError) -> WeChatUnavailable:
        if error.errcode == -1:
            return WeChatUnavailable("微信服务器繁忙，请稍后再试")
        if error.errcode in QUOTA_ERRORS:
            return WeChatUnavailable("微信接口调用次数已达上限，请稍后再试")
        if error.errcode in CONFIG_ERRORS:
            logger.error("WeChat rejected the account's credentials or setup (errcode %s)", error.errcode)
            return WeChatUnavailable(f"微信公众号配置错误 (errcode {error.errcode})")
        return WeChatUnavailable(f"微信服务器异常 (errcode {error.errcode})")

    # -- OAuth -------------------------------------------------------------------------------------

    async def profile_for_code(self, code: str) -> WeChatProfile:
        try:
            grant = await self._get("/sns/oauth2/access_token", {
                "appid": self.appid, "secret": self._secret, "code": code, "grant_type": "authorization_code",
            })
        except _ApiError as error:
            if error.errcode in CODE_ERRORS:
                raise AuthorizationFailed(CODE_ERRORS[error.errcode]) from None
            raise self._unavailable(error) from None
        openid = _text(grant.get("openid"))
        if not openid:
            logger.warning("WeChat code exchange answered without an openid")
            raise WeChatUnavailable("微信服务器返回了无法识别的数据")
        # A snapshot-page visitor is a virtual account WeChat makes up; it must open the full page first.
        if grant.get("is_snapshotuser") == 1:
            raise AuthorizationFailed("授权失败: 请点击页面下方「使用完整服务」后再登录")
        unionid = _text(grant.get("unionid")) or None
        scopes = {s.strip() for s in _text(grant.get("scope")).split(",")}
        if "snsapi_userinfo" not in scopes:
            return WeChatProfile(openid=openid, unionid=unionid)
        try:
            info = await self._get("/sns/userinfo", {
                "access_token": _text(grant.get("access_token")), "openid": openid, "lang": "zh_CN",
            })
        except _ApiError as error:
            if error.errcode in CODE_ERRORS:
                raise AuthorizationFailed(CODE_ERRORS[error.errcode]) from None
            raise self._unavailable(error) from None
        sex = info.get("sex")
        return WeChatProfile(
            openid=openid,
            unionid=_text(info.get("unionid")) or unionid,
            nickname=_text(info.get("nickname")),
            headimgurl=_avatar_url(info.get("headimgurl")),
            sex=sex if sex in (0, 1, 2) and isinstance(sex, int) else 0,
            country=_text(info.get("country")),
            province=_text(info.get("province")),
            city=_text(info.get("city")),
        )

    # -- basic access_token and jsapi_ticket ------------------------------------------------------

    def _key(self, name: str) -> str:
        return rkey(self._settings, "wechat", self.appid, name)

    @staticmethod
    def _parse(raw: str) -> tuple[str, float] | None:
        try:
            entry = encoding.loads(raw)
            return str(entry["value"]), float(entry["expires_at"])
        except (encoding.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    async def _read(self, name: str) -> tuple[str, float] | None:
        raw = await self._redis.get(self._key(name))
        return None if raw is None else self._parse(raw)

    async def _store(self, name: str, value: str, expires_in: int) -> None:
        expires_at = time.time() + expires_in
        await self._redis.set(
            self._key(name), encoding.dumps_str({"value": value, "expires_at": expires_at}), ex=max(1, expires_in)
        )

    async def _cached(self, name: str, fetch: typing.Callable[[], typing.Awaitable[tuple[str, int]]]) -> str:
        """The cached value, refreshed by exactly one process when it nears its expiry."""
        lock_key = self._key(f"{name}:lock")
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            entry = await self._read(name)
            if entry is not None and entry[1] - time.time() > REFRESH_MARGIN:
                return entry[0]
            owner = secrets.token_hex(8)
            if await self._redis.set(lock_key, owner, nx=True, px=self._lock_ms):
                try:
                    # Another process may have refreshed between our read and our lock.
                    entry = await self._read(name)
                    if entry is not None and entry[1] - time.time() > REFRESH_MARGIN:
                        return entry[0]
                    value, expires_in = await fetch()
                    await self._store(name, value, expires_in)
                    return value
                finally:
                    await self._delete_if_equals(keys=[lock_key], args=[owner])
            # Someone else is refreshing: the old value serves while it is valid, else wait for theirs.
            if entry is not None and entry[1] > time.time():
                return entry[0]
            if time.monotonic() > deadline:
                logger.warning("gave up waiting for another process to refresh the WeChat %s", name)
                raise WeChatUnavailable("微信服务器繁忙，请稍后再试")
            await asyncio.sleep(LOCK_POLL)

    async def _invalidate(self, name: str, value: str) -> None:
        """Forget a cached value WeChat rejected, unless another process already replaced it."""
        raw = await self._redis.get(self._key(name))
        if raw is None:
            return
        entry = self._parse(raw)
        if entry is None or entry[0] == value:
            await self._delete_if_equals(keys=[self._key(name)], args=[raw])

    async def _fetch_access_token(self) -> tuple[str, int]:
        try:
            data = await self._get("/cgi-bin/token", {
                "grant_type": "client_credential", "appid": self.appid, "secret": self._secret,
            })
        except _ApiError as error:
            raise self._unavailable(error) from None
        return _value(data, "access_token")

    async def _access_token(self) -> str:
        return await self._cached("access_token", self._fetch_access_token)

    async def _fetch_ticket(self) -> tuple[str, int]:
        token = await self._access_token()
        try:
            data = await self._get("/cgi-bin/ticket/getticket", {"access_token": token, "type": "jsapi"})
        except _ApiError as error:
            if error.errcode not in TOKEN_REJECTED:
                raise self._unavailable(error) from None
            # The token was rotated elsewhere or expired early: replace it and retry once.
            await self._invalidate("access_token", token)
            token = await self._access_token()
            try:
                data = await self._get("/cgi-bin/ticket/getticket", {"access_token": token, "type": "jsapi"})
            except _ApiError as retry_error:
                raise self._unavailable(retry_error) from None
        return _value(data, "ticket")

    async def jsapi_ticket(self) -> str:
        return await self._cached("jsapi_ticket", self._fetch_ticket)

    # -- template messages --------------------------------------------------------------------------

    async def send_template(self, openid: str, template_id: str, data: typing.Mapping[str, str], url: str,
                            client_msg_id: str) -> str:
        """POST /cgi-bin/message/template/send; WeChat's msgid (wechat-notify.md §1).

        `data` maps template keys to values already inside their type's rule. `client_msg_id` makes a
        repeat with the same id within 10 minutes one message (the retry after a timeout). Raises
        TemplateRefused with WeChat's errcode, or WeChatUnavailable when WeChat was not reached or did
        not answer sensibly (the message may or may not have gone out: send again with the same id).
        """
        body = {"touser": openid, "template_id": template_id, "data": {k: {"value": v} for k, v in data.items()},
                "client_msg_id": client_msg_id}
        if url:
            body["url"] = url
        payload = encoding.dumps(body)
        token = await self._access_token()
        try:
            answer = await self._post("/cgi-bin/message/template/send", token, payload)
        except _ApiError as error:
            if error.errcode not in TOKEN_REJECTED:
                raise TemplateRefused(error.errcode, error.errmsg) from None
            await self._invalidate("access_token", token)
            token = await self._access_token()
            try:
                answer = await self._post("/cgi-bin/message/template/send", token, payload)
            except _ApiError as retry_error:
                raise TemplateRefused(retry_error.errcode, retry_error.errmsg) from None
        msgid = answer.get("msgid")
        return str(msgid) if isinstance(msgid, (int, str)) and not isinstance(msgid, bool) else ""

    async def _post(self, path: str, token: str, payload: bytes) -> dict[str, typing.Any]:
        """POST JSON to a WeChat API with the basic access_token; as `_get` answers and fails."""
        try:
            async with self._session.post(self._base + path, params={"access_token": token}, data=payload,
                                          headers={"Content-Type": "application/json"}) as resp:
                status = resp.status
                body = await resp.read()
        except asyncio.TimeoutError:
            logger.warning("WeChat %s timed out", path)
            raise WeChatUnavailable("微信服务器响应超时，请稍后再试") from None
        except aiohttp.ClientError as exc:
            logger.warning("WeChat %s unreachable: %s", path, type(exc).__name__)
            raise WeChatUnavailable("无法连接微信服务器，请稍后再试") from None
        return self._answer(path, status, body)


def _value(data: dict[str, typing.Any], field: str) -> tuple[str, int]:
    """The value and its lifetime in seconds from a token or ticket answer."""
    value = _text(data.get(field))
    expires_in = data.get("expires_in")
    if not value:
        logger.warning("WeChat answered without a %s", field)
        raise WeChatUnavailable("微信服务器返回了无法识别的数据")
    return value, expires_in if isinstance(expires_in, int) and expires_in > 0 else 7200


async def wechat_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    if settings.dev_wechat:
        logger.warning(
            "!!! NO WECHAT APPID CONFIGURED: development logins are on — ANY code logs in as a user. "
            "Set JIANDONG_WECHAT_APPID and JIANDONG_WECHAT_SECRET in production. !!!"
        )
        app[wechat_key] = DevWeChat()
    else:
        app[wechat_key] = RealWeChat(app[client_session_key], app[redis_key], settings)
    yield
