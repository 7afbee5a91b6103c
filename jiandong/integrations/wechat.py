"""WeChat Official Account: web OAuth login and the JS-SDK ticket; a dev stand-in when no appid is set."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import typing

from aiohttp import web

from ..keys import client_session_key, redis_key, settings_key, wechat_key

logger = logging.getLogger(__name__)


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


class DevWeChat:
    """Development identities: any code is a login, the same code always the same user."""

    appid = ""

    async def profile_for_code(self, code: str) -> WeChatProfile:
        digest = hashlib.sha256(code.encode()).hexdigest()
        return WeChatProfile(openid=f"dev-{digest[:28]}", nickname=f"dev-{code[:20]}")

    async def jsapi_ticket(self) -> str:
        return "dev-jsapi-ticket"


async def wechat_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    if settings.dev_wechat:
        logger.warning(
            "!!! NO WECHAT APPID CONFIGURED: development logins are on — ANY code logs in as a user. "
            "Set JIANDONG_WECHAT_APPID and JIANDONG_WECHAT_SECRET in production. !!!"
        )
        app[wechat_key] = DevWeChat()
    else:
        raise NotImplementedError("the WeChat client is not written yet")
    yield
