"""Endpoint 31: the signed `wx.config` parameters for a page that uses the WeChat JS-SDK."""

from __future__ import annotations

import re
import secrets
import string as charsets
import time
from urllib.parse import unquote

from aiohttp import web

from ..errors import ParameterError, WeChatUnavailable
from ..integrations.wechat import jsapi_sign_string, jsapi_signature
from ..keys import wechat_key
from ..web.fields import Spec, Text
from ..web.openapi import describe, integer, obj, string
from ..web.responses import json_response

routes = web.RouteTableDef()

MAX_URL_LEN = 2048
NONCE_ALPHABET = charsets.ascii_letters + charsets.digits
NONCE_LEN = 16
# A page's address as location.href gives it: http(s), a host name or IPv4 address, an optional port,
# then printable ASCII (a browser percent-encodes everything else).
PAGE_URL = r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?"
# The same address sent through encodeURIComponent.
ENCODED_PAGE_URL = r"[Hh][Tt][Tt][Pp][Ss]?%3[Aa][!-~]*"
PAGE_URL_RE, ENCODED_PAGE_URL_RE = re.compile(PAGE_URL), re.compile(ENCODED_PAGE_URL)

WXCONFIG = obj(
    "wx.config 参数",
    appId=string("公众号 AppID（开发模式为空字符串）"),
    nonceStr=string("随机字符串"),
    timestamp=integer("时间戳（秒）"),
    url=string("参与签名的页面地址（不含 # 及其后部分）"),
    signature=string("签名（sha1 十六进制）"),
    rawString=string("签名原串，jsapi_ticket 的值以 *** 代替"),
)


def page_url(raw: str) -> str:
    """The page URL as the JS-SDK signs it: percent-decoded if sent encoded, without the fragment.

    ParameterError unless it is a PAGE_URL (what the OpenAPI pattern of cur_url says, from the same text).
    """
    # Pages may send encodeURIComponent(location.href); a plain URL never starts this way.
    if ENCODED_PAGE_URL_RE.fullmatch(raw):
        raw = unquote(raw)
    url = raw.split("#", 1)[0]
    if not PAGE_URL_RE.fullmatch(url):
        raise ParameterError("参数错误: cur_url 必须是 http 或 https 页面地址")
    return url


class PageParams(Spec):
    cur_url = Text(
        "调用接口的页面地址（location.href，可 URL 编码）", required=True, max_length=MAX_URL_LEN,
        pattern=f"^(?:{PAGE_URL}|{ENCODED_PAGE_URL})$",
    )


@routes.post("/api/v1/wxconfig")
@describe(
    "获取微信 JS 接口调用前的配置信息",
    tag="微信",
    params=PageParams,
    response=WXCONFIG,
    errors=[ParameterError, WeChatUnavailable],
    description="按 JS-SDK 规则签名（jsapi_ticket、noncestr、timestamp、url）；"
                "jsapi_ticket 与 access_token 只留在服务端，不返回。",
)
async def get_wxconfig(request: web.Request) -> web.Response:
    url = page_url((await PageParams.read(request)).cur_url)
    wechat = request.config_dict[wechat_key]
    ticket = await wechat.jsapi_ticket()
    noncestr = "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LEN))
    timestamp = int(time.time())
    return json_response(
        {
            "appId": wechat.appid,
            "nonceStr": noncestr,
            "timestamp": timestamp,
            "url": url,
            "signature": jsapi_signature(ticket, noncestr, timestamp, url),
            # The ticket is a server-side credential: show where it goes, not what it is.
            "rawString": jsapi_sign_string("***", noncestr, timestamp, url),
        }
    )
