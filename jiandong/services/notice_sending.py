"""Sending what the outbox holds: by WeChat template message, else by Aliyun SMS, else recorded as unreachable.

What each answer means (wechat-notify.md §1-§2, wechat-aliyun.md §4.3):
- WeChat 0: sent. 43004 (the member does not follow the account) and 40003 (an openid not of this account):
  this member cannot be reached there, the SMS template is tried. 45009 (the account's daily quota): every
  WeChat notice waits for the quota to reset, without using up an attempt. -1 (busy) or no answer: tried
  again with the same client_msg_id after RETRY_DELAYS, all inside WeChat's 10-minute de-duplication
  window, so a message that did go out is not sent twice. Anything else (47003, 40037, 48001…) is a
  setup problem or our bug: failed, never retried.
- Aliyun OK: sent by SMS. isv.BUSINESS_LIMIT_CONTROL: tried again once the limit's window passes.
  isp.SYSTEM_ERROR and an unreachable endpoint: tried again. A timeout is not: SendSms is not idempotent
  and the message may have gone out. Anything else: failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from aiohttp import web

from ..errors import WeChatUnavailable
from ..integrations.sms import SmsRefused
from ..integrations.wechat import TemplateRefused
from ..keys import pg_key, settings_key, sms_key, wechat_key
from ..lib import template_fields as tf
from . import notice_kinds, notices

logger = logging.getLogger(__name__)

# Seconds before the 2nd, 3rd and 4th attempts; the last one ends well inside WeChat's 10 minutes.
RETRY_DELAYS = (15, 60, 180)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
UNREACHABLE_THERE = {43004: "会员未关注公众号", 40003: "openid 不属于本公众号"}
QUOTA = {45009}
BUSY = {-1}
SMS_FLOW_CONTROL = "isv.BUSINESS_LIMIT_CONTROL"
SMS_RETRYABLE = {"isp.SYSTEM_ERROR", "NetworkError", "HTTP500", "HTTP502", "HTTP503", "HTTP504"}
# Notices claimed at once; each round claims again until nothing is due or its time is up.
BATCH = 200


def client_msg_id(notice_id: int) -> str:
    """The notice's de-duplication id at WeChat: the same for every attempt."""
    return f"jdn{notice_id}"


def next_quota_reset(now: dt.datetime) -> dt.datetime:
    """WeChat's daily API quotas start again at midnight Beijing time (inference: the quota is per calendar
    day and the platform runs on China time; the reference gives the limit, not the reset)."""
    china = dt.timezone(dt.timedelta(hours=8))
    tomorrow = (now.astimezone(china) + dt.timedelta(days=1)).date()
    return dt.datetime.combine(tomorrow, dt.time(0, 1), china)


def sms_wait(message: str) -> dt.timedelta:
    """How long Aliyun's flow control holds: its message names the level (分钟级 / 小时级 / 天级)."""
    if "天级" in message:
        return dt.timedelta(hours=24)
    if "小时级" in message:
        return dt.timedelta(hours=1)
    return dt.timedelta(minutes=1)


class NoticeSender:
    """Sends due notices under one claim id; one per process, used by the sending job's rounds."""

    def __init__(self, app: web.Application, claim_id: str) -> None:
        self.app = app
        self.claim_id = claim_id
        self.pool = app[pg_key]
        self.settings = app[settings_key]
        self.tz = self.settings.tz
        # Set by a 45009: WeChat is not asked again before then.
        self.quota_until: dt.datetime | None = None
        self.sent = 0

    async def round(self, budget: float) -> int:
        """Send what is due for at most about `budget` seconds; how many notices were finished or put back."""
        deadline = time.monotonic() + budget
        kinds = await notices.kind_settings(self.pool)
        limit = asyncio.Semaphore(self.settings.notice_concurrency)
        handled = 0

        async def one(notice: notices.Claimed) -> None:
            async with limit:
                try:
                    await self.deliver(notice, kinds[notice.kind.name])
                except Exception:
                    # Left 'sending': claimed again once stale, with the same client_msg_id.
                    logger.exception("notice %s: sending failed unexpectedly", notice.id)

        while time.monotonic() < deadline:
            batch = await notices.claim(self.pool, self.claim_id, BATCH)
            if not batch:
                break
            await asyncio.gather(*(one(notice) for notice in batch))
            handled += len(batch)
        return handled

    async def deliver(self, notice: notices.Claimed, settings: notices.KindSettings) -> None:
        kind, text = notice.kind, notice_kinds.line(notice.kind, notice.data, self.tz)
        pool, claim = self.pool, self.claim_id
        if notice.resumed and notice.channel == "sms":
            await notices.finish(pool, notice.id, claim, "failed", "sms", text=text,
                                 error="发送短信时中断：可能已发出，短信无法去重，不再重发")
            return
        if self.settings.dev_wechat:
            await self.app[wechat_key].send_template(notice.openid, settings.template_id, {"text": text}, notice.url,
                                                     client_msg_id(notice.id))
            await notices.finish(pool, notice.id, claim, "logged", "log", text=text, error="未配置公众号 AppID")
            return
        why_not_wechat = self._why_not_wechat(notice, settings)
        if why_not_wechat is None:
            if self.quota_until is not None and dt.datetime.now(dt.UTC) < self.quota_until:
                await notices.later(pool, notice.id, claim, self.quota_until, "wechat", "公众号今日调用次数已用完",
                                    counted=False)
                return
            try:
                data = notice_kinds.template_data(kind, settings.mapping(), notice.data, self.tz)
            except tf.FieldError as exc:
                await notices.finish(pool, notice.id, claim, "failed", "wechat", text=text,
                                     error=f"模板字段设置有误：{exc}")
                return
            # Not marked as being tried first (one write less a message): a notice resumed from a sender that
            # died here goes out again with the same client_msg_id, which WeChat turns into one message.
            try:
                msgid = await self.app[wechat_key].send_template(notice.openid, settings.template_id, data,
                                                                 notice.url, client_msg_id(notice.id))
            except TemplateRefused as exc:
                if exc.errcode in UNREACHABLE_THERE:
                    why_not_wechat = f"公众号：{UNREACHABLE_THERE[exc.errcode]}（{exc.errcode}）"
                elif exc.errcode in QUOTA:
                    self.quota_until = next_quota_reset(dt.datetime.now(dt.UTC))
                    logger.warning("WeChat template quota used up (45009): notices wait until %s", self.quota_until)
                    await notices.later(pool, notice.id, claim, self.quota_until, "wechat",
                                        f"公众号今日调用次数已用完（{exc.errcode}）", counted=False)
                    return
                elif exc.errcode in BUSY:
                    await self._again(notice, "wechat", text, f"微信繁忙（{exc.errcode}）")
                    return
                else:
                    await notices.finish(pool, notice.id, claim, "failed", "wechat", text=text,
                                         error=f"微信拒绝：{exc.errcode} {exc.errmsg}"[:300])
                    return
            except WeChatUnavailable as exc:
                await self._again(notice, "wechat", text, f"微信无应答：{exc.msg}")
                return
            else:
                await notices.finish(pool, notice.id, claim, "sent", "wechat", text=text, msgid=msgid)
                self.sent += 1
                return
        await self._by_sms(notice, settings, text, why_not_wechat)

    def _why_not_wechat(self, notice: notices.Claimed, settings: notices.KindSettings) -> str | None:
        if not settings.template_id:
            return "未设置公众号模板"
        if not notice.openid:
            return "会员没有微信 openid"
        return None

    async def _by_sms(self, notice: notices.Claimed, settings: notices.KindSettings, text: str,
                      why_not_wechat: str) -> None:
        pool, claim = self.pool, self.claim_id
        missing = ("没有绑定手机号" if not notice.mobile else
                   "未设置短信模板" if not settings.sms_template_code else None)
        if missing is not None:
            await notices.finish(pool, notice.id, claim, "unreachable", None, text=text,
                                 error=f"{why_not_wechat}；短信：{missing}")
            return
        assert notice.mobile is not None
        await notices.trying(pool, notice.id, claim, "sms")
        params = notice_kinds.sms_params(notice.kind, notice.data, self.tz)
        try:
            biz_id = await self.app[sms_key].send_notice(notice.mobile, settings.sms_template_code, params,
                                                        client_msg_id(notice.id))
        except SmsRefused as exc:
            if exc.code == SMS_FLOW_CONTROL:
                await notices.later(pool, notice.id, claim, dt.datetime.now(dt.UTC) + sms_wait(exc.message), "sms",
                                    f"{why_not_wechat}；短信流控：{exc.message}")
            elif exc.code in SMS_RETRYABLE:
                await self._again(notice, "sms", text, f"{why_not_wechat}；短信：{exc.code}")
            else:
                await notices.finish(pool, notice.id, claim, "failed", "sms", text=text,
                                     error=f"{why_not_wechat}；短信失败：{exc.code} {exc.message}"[:300])
            return
        state = "sms" if self.settings.sms_provider == "aliyun" else "logged"
        await notices.finish(pool, notice.id, claim, state, "sms" if state == "sms" else "log", text=text,
                             biz_id=biz_id, error=why_not_wechat)
        self.sent += 1

    async def _again(self, notice: notices.Claimed, channel: str, text: str, error: str) -> None:
        """Tried again after the next delay, or failed once the attempts are used up."""
        if notice.attempts >= MAX_ATTEMPTS:
            await notices.finish(self.pool, notice.id, self.claim_id, "failed", channel, text=text,
                                 error=f"{error}（已尝试 {notice.attempts} 次）")
            return
        delay = RETRY_DELAYS[min(notice.attempts, len(RETRY_DELAYS)) - 1]
        await notices.later(self.pool, notice.id, self.claim_id,
                            dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay), channel, error)

