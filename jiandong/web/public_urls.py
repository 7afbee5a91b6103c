"""The URLs this site hands to others (WeChat Pay's notify URLs), built in one place from the settings."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from ..keys import settings_key
from ..settings import Settings
from ..store import media

NOTIFY_PATH = "/api/v1/pay/notify"
REFUND_NOTIFY_PATH = "/api/v1/pay/refund_notify"


def public_base(settings: Settings) -> str:
    """The site's base URL where no request tells it (no trailing slash): public_url, else this server's own."""
    return settings.base_url


def pay_notify_url(source: web.Request | Settings) -> str:
    """Where WeChat Pay posts payment results: the setting, else on the site's base URL (a request's
    base is media.public_base: its Host only in development mode)."""
    settings = source.config_dict[settings_key] if isinstance(source, web.Request) else source
    if settings.wechatpay_notify_url:
        return settings.wechatpay_notify_url
    base = media.public_base(source) if isinstance(source, web.Request) else public_base(settings)
    return base + NOTIFY_PATH


def refund_notify_url(settings: Settings) -> str:
    """Where WeChat Pay posts refund results: the setting, else beside the payment notify URL (same site),
    else on public_url (or this server's own address)."""
    if settings.wechatpay_refund_notify_url:
        return settings.wechatpay_refund_notify_url
    if settings.wechatpay_notify_url:
        parts = urlsplit(settings.wechatpay_notify_url)
        return f"{parts.scheme}://{parts.netloc}{REFUND_NOTIFY_PATH}"
    return public_base(settings) + REFUND_NOTIFY_PATH
