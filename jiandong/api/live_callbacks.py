"""Stream start/stop callbacks of Aliyun Live, SRS and nginx-rtmp, each answered the way its server expects.

Authentication:
- Aliyun: the ALI-LIVE-SIGNATURE header when aliyun_live_callback_key is set, or live_push_secret
  as `token` in the callback URL's query or in the pusher's URL (`usrargs`). Aliyun has already
  checked the pusher's auth_key, so this only proves the callback comes from Aliyun.
- SRS and nginx-rtmp: live_push_secret as `token` in the *pusher's* URL (SRS `param`, nginx's
  appended args), compared in constant time. A token in the callback URL is not taken: it would
  let any pusher through. Without live_push_secret every publish is refused.

Each event names its publishing session (nginx-rtmp `clientid`, SRS `client_id`, and for Aliyun,
whose callback has no session id, the pusher's `ip` and the receiving `node`): a stop from another
session than the one that made the live go live is ignored (services/live_status.py).

A stream name no live has is ignored. Aliyun is answered 200 (its pusher is already admitted and
a refusal would only make it retry); SRS and nginx-rtmp get 404 for on_publish, which makes them
refuse the pusher, so nobody streams under a name the club did not create.
"""

from __future__ import annotations

import hmac
import logging
import time
from urllib.parse import parse_qs

from aiohttp import web
from multidict import MultiDict

from ..errors import Forbidden, LiveNotFound, ParameterError
from ..integrations.aliyun_live import callback_signature_valid
from ..keys import settings_key
from ..lib import encoding
from ..lib.logthrottle import JUNK
from ..services.live_status import ENDED, LIVE, set_live_status
from ..web.auth import public
from ..web.fields import Outside, Spec, Tokens, UnixTime
from ..web.openapi import describe, integer, obj, string
from ..web.params import parse_form, read_body
from ..web.responses import json_response, operation_result

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

TAG = "直播状态回调"
STREAM_NAME_MAX = 255
PUBLISHER_MAX = 128
# The callback signature covers only domain and time, not the query: a captured one is honoured
# for this long (Aliyun retries for a few seconds; the rest is clock skew).
ALIYUN_SIGNATURE_MAX_AGE = 300
ALIYUN_ACTIONS = {"publish": LIVE, "publish_done": ENDED}
SRS_ACTIONS = {"on_publish": LIVE, "on_unpublish": ENDED}
NGINX_CALLS = {"publish": LIVE, "publish_done": ENDED}
SRS_OK = {"code": 0, "msg": "OK"}


def token_matches(candidates: list[str], secret: str) -> bool:
    """Exactly one token given, equal to the secret (constant time); never true without a secret."""
    if not secret or len(candidates) != 1:
        return False
    return hmac.compare_digest(candidates[0].encode(), secret.encode())


def query_tokens(query: str) -> list[str]:
    """The `token` values of a URL query, with or without its leading `?`."""
    return parse_qs(query.lstrip("?"), keep_blank_values=True).get("token", [])


# A stream server's fields are read as cleaned text (jiandong.web.fields.Outside: "" when absent, control
# characters removed, so they never get further); one that is not text (a JSON object, say) is a 400.


class AliyunCall(Spec):
    # Not required and no enum: any other action (or none) is acknowledged, as the docs below say.
    action = Outside("publish 推流开始，publish_done 推流结束（其他只应答）", location="query")
    id = Outside("流名称（StreamName），publish / publish_done 必填", location="query")
    app = Outside("推流域名", location="query")
    appname = Outside("AppName", location="query")
    time = UnixTime("事件时间（Unix 秒）", location="query")
    ip = Outside("推流端 IP（与 node 一起标识推流会话）", location="query")
    node = Outside("接收推流的节点", location="query")
    usrargs = Outside("推流地址的参数（可带 token）", location="query")
    token = Tokens("回调地址中配置的密钥（live_push_secret）", location="query")


class SrsCall(Spec):
    action = Outside("on_publish / on_unpublish（其他动作只应答）")
    stream = Outside("流名称，on_publish / on_unpublish 必填")
    param = Outside("推流地址的参数（on_publish / on_unpublish），须含 token=live_push_secret")
    # SRS 3 and older send it as a number (reference §6.1).
    client_id = Outside("推流会话 ID：只有让直播开始的会话的 on_unpublish 才结束直播", numbers=True)
    app = Outside("SRS app")
    ip = Outside("推流端 IP（记入日志）")


class NginxCall(Spec):
    call = Outside("publish / publish_done（其他只应答）")
    name = Outside("流名称，publish / publish_done 必填")
    token = Tokens("推流地址的参数 token=live_push_secret（publish / publish_done）")
    clientid = Outside("推流会话 ID：只有让直播开始的会话的 publish_done 才结束直播")
    app = Outside("nginx-rtmp application")
    addr = Outside("推流端地址（记入日志）")


def publisher(kind: str, *parts: str) -> str | None:
    """The publishing session as `<kind>:<id>` from the callback's own (cleaned) fields; None when it names none."""
    ident = "@".join(part.strip() for part in parts if part.strip())[:PUBLISHER_MAX]
    return f"{kind}:{ident}" if ident else None


def stream_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > STREAM_NAME_MAX:
        raise ParameterError("参数错误: 流名称无效")
    return name


def aliyun_authenticated(request: web.Request, tokens: list[str]) -> bool:
    settings = request.config_dict[settings_key]
    key = settings.aliyun_live_callback_key
    if key:
        stamp = request.headers.get("ALI-LIVE-TIMESTAMP", "")
        fresh = stamp.isascii() and stamp.isdigit() and abs(time.time() - int(stamp)) <= ALIYUN_SIGNATURE_MAX_AGE
        # The signed domain is the push domain, which the callback names in `app`.
        signature = request.headers.get("ALI-LIVE-SIGNATURE", "")
        if fresh and callback_signature_valid(request.query.get("app", ""), stamp, signature, key):
            return True
    if not tokens:
        # As sent, not cleaned: a control character in a wrong secret must not be taken away to make it right.
        tokens = query_tokens(request.query.get("usrargs", ""))
    return token_matches(tokens, settings.live_push_secret)


@routes.get("/api/v1/live/callback/aliyun")
@describe(
    "阿里云直播推流回调（publish / publish_done）",
    tag=TAG,
    params=AliyunCall,
    errors=[ParameterError, Forbidden],
    public=True,
    description=(
        "在阿里云控制台配置为推流回调地址。鉴权：请求头 ALI-LIVE-SIGNATURE（配置了 aliyun_live_callback_key 时），"
        "或查询参数 / 推流参数中的 token。未知的流名称忽略并返回 200。"
    ),
)
@public
async def aliyun_callback(request: web.Request) -> web.Response:
    # A query's values are all text: reading them refuses nothing.
    p = AliyunCall.take(request.query)
    if not aliyun_authenticated(request, p.token):
        logger.warning("Aliyun live callback refused: bad signature or token (from %s)", request.remote, extra=JUNK)
        raise Forbidden("权限不够: 回调鉴权失败")
    action = p.action
    if action not in ALIYUN_ACTIONS:
        # Other notifications (e.g. recording) may share the URL: acknowledged, not acted on.
        return operation_result(request)
    name = stream_name(p.id)
    result = await set_live_status(
        request.config_dict, name, ALIYUN_ACTIONS[action], at=p.time,
        # Inferred: Aliyun names no session, and a pusher keeps its address and node for a session.
        publisher=publisher("aliyun", p.ip, p.node),
        source=f"aliyun {action}",
    )
    if not result.known:
        logger.info("Aliyun live callback for unknown stream %r ignored", name)
    return operation_result(request)


@routes.post("/api/v1/live/callback/srs")
@describe(
    "SRS http_hooks 回调（on_publish / on_unpublish）",
    tag=TAG,
    params=SrsCall,
    response=obj("SRS 应答", code=integer("0 表示允许"), msg=string("OK")),
    errors=[ParameterError, Forbidden, LiveNotFound],
    public=True,
    body_types=["application/json"],
    description=(
        "JSON 请求体，在 SRS 的 http_hooks 中配置。token 不对返回 403、未知流名称的 on_publish 返回 404，"
        "SRS 因而拒绝推流；成功返回 {\"code\": 0}。"
    ),
)
@public
async def srs_callback(request: web.Request) -> web.Response:
    try:
        body = encoding.loads(await read_body(request))
    except encoding.JSONDecodeError:
        raise ParameterError("参数错误: 请求体不是合法的 JSON") from None
    if not isinstance(body, dict):
        raise ParameterError("参数错误: 请求体必须是 JSON 对象")
    p = SrsCall.take(body)
    action = p.action
    if action not in SRS_ACTIONS:
        # on_play, on_stop, on_dvr ... pointed here too must not refuse players.
        return json_response(SRS_OK)
    if not token_matches(query_tokens(p.param), request.config_dict[settings_key].live_push_secret):
        logger.warning("SRS %s of %r refused: bad token (client %s)", action, p.stream, p.ip, extra=JUNK)
        raise Forbidden("权限不够: 推流鉴权失败")
    return await _apply(request, stream_name(p.stream), SRS_ACTIONS[action], f"srs {action}",
                        publisher("srs", p.client_id), json_response(SRS_OK))


@routes.get("/api/v1/live/callback/nginx")
@routes.post("/api/v1/live/callback/nginx")
@describe(
    "nginx-rtmp notify 回调（on_publish / on_publish_done）",
    tag=TAG,
    params=NginxCall,
    errors=[ParameterError, Forbidden, LiveNotFound],
    public=True,
    body_types=["application/x-www-form-urlencoded"],
    description=(
        "nginx-rtmp 的 on_publish / on_publish_done 指向这里（notify_method post 为表单请求体，get 为查询参数）。"
        "token 不对返回 403、未知流名称的 publish 返回 404，nginx-rtmp 因而拒绝推流；成功返回 2xx。"
    ),
)
@public
async def nginx_callback(request: web.Request) -> web.Response:
    # POST: the form body only, so a token written into the notify URL never stands in for the pusher's.
    sent: MultiDict[str] = MultiDict(request.query)
    if request.method == "POST":
        sent = MultiDict(parse_form(await read_body(request)))
    p = NginxCall.take(sent)
    call = p.call
    if call not in NGINX_CALLS:
        return operation_result(request)
    # Every `token` given must be the one: a second one must not slip past the check.
    if not token_matches(p.token, request.config_dict[settings_key].live_push_secret):
        logger.warning("nginx-rtmp %s of %r refused: bad token (client %s)", call, p.name, p.addr, extra=JUNK)
        raise Forbidden("权限不够: 推流鉴权失败")
    return await _apply(request, stream_name(p.name), NGINX_CALLS[call], f"nginx {call}",
                        publisher("nginx", p.clientid), operation_result(request))


async def _apply(
    request: web.Request, name: str, live_status: int, source: str, session: str | None, ok: web.Response
) -> web.Response:
    result = await set_live_status(request.config_dict, name, live_status, publisher=session, source=source)
    if not result.known:
        if live_status == LIVE:
            logger.warning("%s refused: no live has stream %r", source, name, extra=JUNK)
            raise LiveNotFound("赛事直播不存在: 未知的流名称")
        logger.info("%s for unknown stream %r ignored", source, name)
    return ok
