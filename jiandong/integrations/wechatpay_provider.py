"""Which WeChat Pay the app pays through, chosen at start-up from the settings: API v3 when its APIv3 key is
set, API v2 when its key is, else development payments (no money moves)."""

from __future__ import annotations

import logging
import typing

from aiohttp import web

from ..keys import client_session_key, settings_key, wechatpay_key
from ..settings import Settings
from .wechatpay import DevWeChatPay, RealWeChatPay
from .wechatpay_v3 import Keys, RealWeChatPayV3

logger = logging.getLogger(__name__)


def api_version(settings: Settings) -> str:
    """"v3", "v2" or "dev": what `wechatpay_ctx` will use (server.py check says it)."""
    if not settings.wechatpay_mch_id:
        return "dev"
    return "v3" if settings.wechatpay_apiv3_key else "v2"


async def wechatpay_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    """The app's WeChat Pay (wechatpay_key). Key files that cannot be read stop the start-up (OSError, ValueError)."""
    settings = app[settings_key]
    version = api_version(settings)
    if version == "v3":
        app[wechatpay_key] = RealWeChatPayV3(app[client_session_key], settings, Keys.load(settings))
    elif version == "v2":
        app[wechatpay_key] = RealWeChatPay(app[client_session_key], settings)
    else:
        logger.warning(
            "!!! NO WECHAT PAY MERCHANT CONFIGURED: dev payments are on — orders are paid through "
            "POST /api/v1/pay/dev/complete without money. Set JIANDONG_WECHATPAY_MCH_ID and "
            "JIANDONG_WECHATPAY_APIV3_KEY (or, for API v2, JIANDONG_WECHATPAY_API_KEY) in production. !!!"
        )
        app[wechatpay_key] = DevWeChatPay(settings)
    yield
