"""Which WeChat Pay the app pays through, chosen at start-up from the settings: API v3 when its APIv3 key is
set, API v2 when its key is, else development payments (no money moves)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import typing

from aiohttp import web

from ..keys import client_session_key, settings_key, wechatpay_key
from ..lib.stopping import cancel_and_wait
from ..settings import Settings, SettingsError
from .wechatpay import DevWeChatPay, PayError, RealWeChatPay
from .wechatpay_v3 import Keys, RealWeChatPayV3

logger = logging.getLogger(__name__)

# Seconds between two downloads of the platform certificates (wechatpay-go refreshes daily, wechatpay-java hourly).
CERTIFICATE_REFRESH = 12 * 3600


def api_version(settings: Settings) -> str:
    """"v3", "v2" or "dev": what `wechatpay_ctx` will use (server.py check says it)."""
    if not settings.wechatpay_mch_id:
        return "dev"
    return "v3" if settings.wechatpay_apiv3_key else "v2"


async def wechatpay_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    """The app's WeChat Pay (wechatpay_key). Key files that do not load stop the start-up: SettingsError naming
    the setting."""
    settings = app[settings_key]
    version = api_version(settings)
    refresher = None
    if version == "v3":
        try:
            keys = Keys.load(settings)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        pay = app[wechatpay_key] = RealWeChatPayV3(app[client_session_key], settings, keys)
        logger.info("WeChat Pay API v3, merchant %s; WeChat Pay's signatures checked with %s",
                    settings.wechatpay_mch_id, ", ".join(sorted(keys.wechat_keys)))
        if settings.wechatpay_platform_cert_paths:
            refresher = asyncio.create_task(keep_certificates(pay), name="wechatpay-certificates")
    elif version == "v2":
        logger.info("WeChat Pay API v2, merchant %s", settings.wechatpay_mch_id)
        try:
            app[wechatpay_key] = RealWeChatPay(app[client_session_key], settings)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"JIANDONG_WECHATPAY_CERT_PATH / JIANDONG_WECHATPAY_KEY_PATH: the merchant API "
                                f"certificate and key do not load ({exc.strerror or exc})") from None
    else:
        logger.warning(
            "!!! NO WECHAT PAY MERCHANT CONFIGURED: dev payments are on — orders are paid through "
            "POST /api/v1/pay/dev/complete without money. Set JIANDONG_WECHATPAY_MCH_ID and "
            "JIANDONG_WECHATPAY_APIV3_KEY (or, for API v2, JIANDONG_WECHATPAY_API_KEY) in production. !!!"
        )
        app[wechatpay_key] = DevWeChatPay(settings)
    yield
    if refresher is not None:
        await cancel_and_wait(refresher)


async def keep_certificates(pay: RealWeChatPayV3, interval: float = CERTIFICATE_REFRESH) -> None:
    """Certificate mode: WeChat Pay's platform certificates downloaded at start-up and every `interval` seconds
    (a rotation announces the new one 10 days ahead and signs with it from 5 days before the old expires, §5),
    so a rotation never leaves answers and notifications unverifiable. A failed download is logged (one line)
    and tried again at the next round."""
    while True:
        try:
            await pay.refresh_certificates()
        except PayError:
            pass  # logged by the client
        except Exception:
            logger.exception("WeChat Pay v3: downloading the platform certificates failed")
        await asyncio.sleep(interval)
