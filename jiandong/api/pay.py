"""Endpoints 14 and 15: start a WeChat Pay JSAPI payment, and receive WeChat's payment notification.

Without a merchant (no wechatpay_mch_id) payments are dev payments, completed by `dev_routes`.
"""

from __future__ import annotations

import typing

from aiohttp import web

from ..errors import (
    Forbidden,
    InternalError,
    OrderAlreadyPaid,
    OrderNotFound,
    OrderNotOwned,
    OrderNotPayable,
    ParameterError,
    UserNotFound,
    WeChatUnavailable,
)
from ..integrations.wechatpay import MAX_XML_SIZE, xml_reply
from ..integrations.wechatpay_v3 import RealWeChatPayV3
from ..keys import metrics_key, wechatpay_key
from ..services import orders, payments, refunds
from ..web.auth import current_user_id, public
from ..web.openapi import describe, integer, string
from ..web.params import client_ip, read_body
from ..web.public_urls import NOTIFY_PATH, REFUND_NOTIFY_PATH, pay_notify_url
from ..web.responses import json_response, operation_result
from .order_id import OrderRef

routes = web.RouteTableDef()
# Only added to the app when no merchant is configured (see app.py).
dev_routes = web.RouteTableDef()

DEV_COMPLETE_PATH = "/api/v1/pay/dev/complete"
# The answer to WeChat Pay's notifications (payment and refund alike).
XML_ANSWER = string(
    "XML：<xml><return_code>SUCCESS 或 FAIL</return_code><return_msg>...</return_msg></xml>",
    examples=["<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"],
)

# The answer to a v3 notification that was not taken (§4 of the v3 reference).
V3_FAIL = '{"code":"FAIL","message":"失败"}'.encode()

JSAPI_PARAMS = {
    "type": "object",
    "description": "wx.chooseWXPay / WeixinJSBridge getBrandWCPayRequest 的参数",
    "properties": {
        "appId": string("公众号 AppID"),
        "timeStamp": string("时间戳（秒），WeixinJSBridge 用"),
        "timestamp": string("同 timeStamp，wx.chooseWXPay 用"),
        "nonceStr": string("随机字符串"),
        "package": string("prepay_id=..."),
        "signType": string("签名方式：微信支付 API v2 为 MD5 或 HMAC-SHA256，API v3 为 RSA"),
        "paySign": string("签名"),
        "dev": integer("仅开发模式：1 表示这是开发支付，不会扣款"),
        "dev_complete_url": string("仅开发模式：完成这笔开发支付的接口（POST，参数 id）"),
    },
    "required": ["appId", "timeStamp", "timestamp", "nonceStr", "package", "signType", "paySign"],
}




@routes.post("/api/v1/pay/pre_order")
@describe(
    "订单支付",
    tag="支付",
    params=OrderRef,
    response=JSAPI_PARAMS,
    errors=[
        ParameterError, OrderNotFound, OrderNotOwned, OrderAlreadyPaid, OrderNotPayable, UserNotFound, Forbidden,
        WeChatUnavailable,
    ],
    description=(
        "为本人待支付的订单向微信支付统一下单（JSAPI），返回调起支付的参数（timeStamp 与 timestamp 同值）。"
        "订单已有仍有效的 prepay_id 时直接复用，不重复下单。已支付返回 60001；已关闭、取消或超时返回 60005；"
        "需要新下单而订单离超时已不足 6 分钟时也返回 60005（msg：订单即将超时，请重新下单），"
        "因为微信支付要求 time_expire（即订单超时时间）晚于下单时间 5 分钟以上；"
        "微信支付出错返回 50000（msg 带原因）。未配置商户号时为开发支付：返回 dev=1 与 dev_complete_url，"
        "向该接口提交订单 id 即按支付成功处理（不扣款）。"
    ),
)
async def pre_order(request: web.Request) -> web.Response:
    p = await OrderRef.read(request)
    body: dict[str, object] = dict(await orders.pre_order(
        request.app,
        current_user_id(request),
        p.id,
        client_ip(request),
        pay_notify_url(request),
    ))
    body["timestamp"] = body["timeStamp"]
    if request.config_dict[wechatpay_key].dev:
        body["dev"] = 1
        body["dev_complete_url"] = DEV_COMPLETE_PATH
    return json_response(body)


def notification_doc(summary: str, description: str) -> typing.Any:
    """@describe of an endpoint WeChat Pay posts XML to (no token, bounded body, the XML answer)."""
    return describe(summary, tag="支付", public=True, content_type="text/xml", max_body=MAX_XML_SIZE,
                    response=XML_ANSWER, description=description)


@routes.post(NOTIFY_PATH)
@notification_doc(
    "支付回调",
    (
        "微信支付结果通知（无需 token）。API v2 商户：XML，答 XML 的 SUCCESS/FAIL；API v3 商户：JSON，先验签"
        "（Wechatpay-Serial 指明的公钥或平台证书、5 分钟内的时间戳、拒绝 WECHATPAY/SIGNTEST/ 探测）"
        "再以 APIv3 密钥解密，"
        "记录完成后答 204，不受理时答 400 与 {\"code\":\"FAIL\",\"message\":\"失败\"}。"
        "校验签名、appid、mch_id、金额后，在一个事务内把订单标为已支付、"
        "延长会员有效期（从当前有效期与现在中较晚者起，按业务有效期年数）并记录原始通知。"
        "重复通知回 SUCCESS 且不再改变任何数据；校验失败回 FAIL，不改变任何数据：指明我方订单的通知记入该订单，"
        "其余只按原因计数（jiandong_notifications_dropped_total），不留记录。"
    ),
)
@public
async def pay_notify(request: web.Request) -> web.Response:
    outcomes = request.config_dict[metrics_key].payment_notifications
    v3 = _speaks_v3(request)
    try:
        body = await read_body(request)
        if v3:
            verdict = await payments.receive_v3_notification(request.app, request.headers, body)
        else:
            verdict = await payments.receive_notification(request.app, body, source="notify")
    except Exception:
        outcomes.labels("error").inc()
        raise
    outcomes.labels("applied" if verdict.applied else "accepted" if verdict.ok else "rejected").inc()
    return v3_reply(verdict.ok) if v3 else web.Response(text=xml_reply(verdict.ok, verdict.message),
                                                        content_type="text/xml")


def _speaks_v3(request: web.Request) -> bool:
    """Whether the merchant uses API v3, whose notifications are JSON and are answered its way (§4 of the v3
    reference); a v2 merchant's come as XML and are answered in XML."""
    return isinstance(request.config_dict[wechatpay_key], RealWeChatPayV3)


def v3_reply(ok: bool) -> web.Response:
    """What WeChat Pay v3 reads of an answer to a notification is its status (§4): 204 received, 4xx with
    `{"code":"FAIL",...}` not (WeChat sends it again on its schedule). Sent only once the database committed."""
    if ok:
        return web.Response(status=204)
    return web.Response(status=400, body=V3_FAIL, content_type="application/json")


@routes.post(REFUND_NOTIFY_PATH)
@notification_doc(
    "退款结果通知",
    (
        "微信支付退款结果通知（无需 token）。API v3 商户：JSON（REFUND.SUCCESS / ABNORMAL / CLOSED），验签、解密同支付"
        "回调，答 204 或 400 FAIL。API v2 商户：XML，外层无签名，req_info 以商户 API 密钥的 MD5（小写十六进制）为密钥"
        "AES-256-ECB 解密（PKCS#7），按退款单号 out_refund_no 找到退款，核对订单号与退款金额后在一个事务内记下结果"
        "（SUCCESS 退款成功、REFUNDCLOSE 退款关闭、CHANGE 退款异常）。重复通知回 SUCCESS 且不再改变任何数据；"
        "解密或核对失败回 FAIL，不改变任何数据：指明我方退款单的通知记入该退款，其余只按原因计数，不留记录。"
    ),
)
@public
async def refund_notify(request: web.Request) -> web.Response:
    if _speaks_v3(request):
        outcome = await refunds.receive_v3_notification(request.app, request.headers, await read_body(request))
        return v3_reply(outcome.ok)
    outcome = await refunds.receive_notification(request.app, await read_body(request))
    return web.Response(text=xml_reply(outcome.ok, outcome.message), content_type="text/xml")


@dev_routes.post(DEV_COMPLETE_PATH)
@describe(
    "完成开发支付（仅开发模式）",
    tag="支付",
    params=OrderRef,
    errors=[
        ParameterError, OrderNotFound, OrderNotOwned, OrderAlreadyPaid, OrderNotPayable, UserNotFound, Forbidden,
    ],
    description=(
        "只在未配置微信支付商户号时存在：把本人已调用过 pay/pre_order 的待支付订单按支付成功处理（不扣款），"
        "走与微信支付通知相同的处理流程。"
    ),
)
async def complete_dev_payment(request: web.Request) -> web.Response:
    p = await OrderRef.read(request)
    verdict = await orders.dev_complete(request.app, current_user_id(request), p.id)
    if not verdict.ok:
        # Our own notification failed our own checks: a bug, not the caller's fault.
        raise InternalError(f"开发支付失败: {verdict.message}")
    return operation_result(request)
