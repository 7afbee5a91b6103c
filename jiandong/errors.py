"""The API document's error table as exceptions: HTTP status, error_code and msg, in one place."""

from __future__ import annotations


class ApiError(Exception):
    """A documented API error; the error middleware turns it into the JSON error body."""

    status = 400
    error_code = 10000
    msg = "操作错误"
    # Other msg texts raised under the same code, listed beside msg in the docs page's error table.
    variants: tuple[str, ...] = ()

    def __init__(self, msg: str | None = None) -> None:
        if msg is not None:
            self.msg = msg
        super().__init__(self.msg)


# 400: bad input
class ParameterError(ApiError):
    status, error_code, msg = 400, 99999, "参数错误"


class PayloadTooLarge(ApiError):
    status, error_code, msg = 413, 99999, "参数错误: 请求体过大"


class UnsupportedMediaType(ApiError):
    status, error_code, msg = 415, 99999, "参数错误: 请求体类型不支持，请用表单、JSON 或 multipart"


class BodyTimeout(ApiError):
    status, error_code, msg = 408, 99999, "参数错误: 请求体接收超时"


class OperationError(ApiError):
    status, error_code, msg = 400, 10000, "操作错误"


class WrongCode(ApiError):
    status, error_code, msg = 400, 10007, "验证码错误"


class NoCodePending(ApiError):
    status, error_code, msg = 404, 10009, "手机验证码不存在"


class PhoneNotBound(ApiError):
    status, error_code, msg = 400, 10011, "当前用户未绑定手机号码"


class SaveImageFailed(ApiError):
    status, error_code, msg = 500, 40001, "保存图片失败"


# 401: identity
class AuthenticationFailed(ApiError):
    status, error_code, msg = 401, 10002, "身份验证失败"


class TokenInvalid(ApiError):
    status, error_code, msg = 401, 10003, "Token已过期或无效Token"


class AuthorizationFailed(ApiError):
    status, error_code, msg = 401, 10008, "授权失败"


# 403: permission
class Forbidden(ApiError):
    status, error_code, msg = 403, 10001, "权限不够"


class OrderNotOwned(ApiError):
    status, error_code, msg = 403, 10005, "订单与用户不匹配"


class OrderStatusForbidden(ApiError):
    status, error_code, msg = 403, 60007, "没有权限更改订单状态"


# 404: not found
class UserNotFound(ApiError):
    status, error_code, msg = 404, 10004, "用户不存在或被禁用"


class BusinessNotFound(ApiError):
    status, error_code, msg = 404, 20000, "业务不存在或已禁用"


class BusinessCategoryNotFound(ApiError):
    status, error_code, msg = 404, 20001, "业务类别不存在"


class CompetitionNotFound(ApiError):
    status, error_code, msg = 404, 30000, "赛事不存在"


class TeamNotFound(ApiError):
    status, error_code, msg = 404, 30001, "球队信息不存在"


class MemberNotFound(ApiError):
    status, error_code, msg = 404, 30002, "会员信息不存在或已被禁用"


class NoTeam(ApiError):
    status, error_code, msg = 404, 30003, "当前会员未加入任何球队"


class VideoNotFound(ApiError):
    status, error_code, msg = 404, 30004, "赛事视频不存在"


class LiveNotFound(ApiError):
    status, error_code, msg = 404, 30005, "赛事直播不存在"


class TeamHasNoCompetitions(ApiError):
    status, error_code, msg = 404, 30006, "当前球队未参与任何赛事"


class ApplyNotFound(ApiError):
    status, error_code, msg = 404, 30008, "赛事报名不存在"


class ImageNotFound(ApiError):
    status, error_code, msg = 404, 40000, "指定图片不存在"


class BannerNotFound(ApiError):
    status, error_code, msg = 404, 40002, "请求banner不存在"


class CarouselNotFound(ApiError):
    status, error_code, msg = 404, 40003, "请求轮播图片不存在"


class ConfigNotFound(ApiError):
    status, error_code, msg = 404, 40004, "请求配置不存在"


class OrderNotFound(ApiError):
    status, error_code, msg = 404, 60000, "订单不存在"


class AddressNotFound(ApiError):
    status, error_code, msg = 404, 60004, "用户收货地址不存在，下单失败"


class ProductNotFound(ApiError):
    status, error_code, msg = 404, 60006, "商品不存在，订单创建失败"


# 409: conflicts with the current state
class PhoneTaken(ApiError):
    status, error_code, msg = 409, 10006, "手机号码已被其他人使用"


class DuplicateApply(ApiError):
    status, error_code, msg = 409, 30007, "重复提交赛事报名"


class OrderAlreadyPaid(ApiError):
    status, error_code, msg = 409, 60001, "订单已经支付过"


class OrderNotCancellable(ApiError):
    status, error_code, msg = 409, 60002, "订单不允许取消"
    variants = ("订单不允许取消: 订单已经支付过",)


class OrderNotClosable(ApiError):
    status, error_code, msg = 409, 60003, "订单不允许关闭"


class OrderNotPayable(ApiError):
    status, error_code, msg = 409, 60005, "还没付款或者你已经更新过订单"
    variants = ("订单即将超时，请重新下单",)


# 429: throttled
class Throttled(ApiError):
    status, error_code, msg = 429, 10010, "用户重复发送验证码"


# 502: an outside service failed
class WeChatUnavailable(ApiError):
    status, error_code, msg = 502, 50000, "微信服务器异常"


class SmsFailed(ApiError):
    status, error_code, msg = 502, 70000, "发送短信失败"


class AliyunUnavailable(ApiError):
    status, error_code, msg = 502, 80000, "阿里云服务器异常"


# 503: PostgreSQL or Redis is down or too slow (outages.py); the answer carries Retry-After
class ServiceUnavailable(ApiError):
    status, error_code, msg = 503, 10000, "服务暂时不可用，请稍后重试"
    retry_after = 5


# 500: unexpected; the body never carries internals
class InternalError(ApiError):
    status, error_code, msg = 500, 10000, "服务器内部错误"


class RouteNotFound(ApiError):
    status, error_code, msg = 404, 10000, "接口不存在"


class MethodNotAllowed(ApiError):
    status, error_code, msg = 405, 10000, "请求方法不允许"


def all_errors() -> list[type[ApiError]]:
    """Every error class, for the OpenAPI document and the docs page."""
    found: list[type[ApiError]] = []
    stack = list(ApiError.__subclasses__())
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: (c.error_code, c.status))
