"""The site's public base URL and the URLs built on it that others call back (WeChat Pay's notify URLs)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

from ..keys import settings_key
from ..settings import Settings
from .params import on_chat_port

NOTIFY_PATH = "/api/v1/pay/notify"
REFUND_NOTIFY_PATH = "/api/v1/pay/refund_notify"
# What a development host may look like: a name or an address, and a port. Anything else (quotes,
# slashes, spaces) is not copied into an answer.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def public_base(source: web.Request | Settings) -> str:
    """The site's base URL (no trailing slash) for the URLs an answer hands out: JIANDONG_PUBLIC_URL.

    Without it, settings give this server's own address (settings.base_url). A request's Host is the
    client's to choose: it is used only in development mode (no WeChat AppID, where the server
    refuses nothing to anyone anyway) and only when it looks like a host. Outside development mode
    the server does not start without a public URL (settings.public_url_problem).
    """
    if not isinstance(source, web.Request):
        return source.base_url
    request, settings = source, source.config_dict[settings_key]
    if settings.fixed_public_base:
        return settings.fixed_public_base
    if settings.dev_wechat and _HOST.fullmatch(request.host):
        base = f"{request.scheme}://{request.host}"
        if on_chat_port(request):
            # The chat port serves its websocket alone: /media/ is on the HTTP port of the same host.
            base = str(URL(base).with_port(settings.port)).rstrip("/")
        return base
    return settings.base_url


def pay_notify_url(source: web.Request | Settings) -> str:
    """Where WeChat Pay posts payment results: the setting, else on the site's base URL (public_base)."""
    settings = source.config_dict[settings_key] if isinstance(source, web.Request) else source
    if settings.wechatpay_notify_url:
        return settings.wechatpay_notify_url
    return public_base(source) + NOTIFY_PATH


def refund_notify_url(settings: Settings) -> str:
    """Where WeChat Pay posts refund results: the setting, else beside the payment notify URL (same site),
    else on public_url (or this server's own address)."""
    if settings.wechatpay_refund_notify_url:
        return settings.wechatpay_refund_notify_url
    if settings.wechatpay_notify_url:
        parts = urlsplit(settings.wechatpay_notify_url)
        return f"{parts.scheme}://{parts.netloc}{REFUND_NOTIFY_PATH}"
    return public_base(settings) + REFUND_NOTIFY_PATH
