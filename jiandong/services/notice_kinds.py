"""The kinds of notice (通知) and what each carries: its values, the template to apply for, its one-line text.

A notice row keeps its kind's values as of the event (`data`); this module turns them into a WeChat
template message's `data` (through the kind's field mapping, lib/template_fields), an Aliyun SMS
TemplateParam (one variable per value, named as the value) and the line staff and logs read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing

from ..lib import template_fields as tf

# Aliyun refuses a variable longer than its template type allows (isv.PARAM_LENGTH_LIMIT); 35 characters
# is the limit for notification templates' variables (inference: Aliyun's console rules, not in the reference).
SMS_VALUE_MAX = 35


@dataclasses.dataclass(frozen=True)
class Value:
    label: str
    nature: str
    blank: str = ""     # written when the event had nothing for it (WeChat refuses an empty value)


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    label: str
    when: str                        # when it is sent, as the settings page says it
    template: str                    # the 类目模板 to pick in the OA's back office
    values: dict[str, Value]
    fields: str                      # the default mapping: "thing1=match" lines
    line: str                        # str.format of the written values
    fixed: dict[str, str] = dataclasses.field(default_factory=dict)   # values every notice of the kind has

    def natures(self) -> dict[str, str]:
        return {name: value.nature for name, value in self.values.items()}


MATCH = Value("比赛", tf.TEXT)
START = Value("比赛时间", tf.TIME)
VENUE = Value("地点", tf.TEXT, blank="待定")
MEMBER = Value("会员", tf.TEXT, blank="会员")
STATUS = Value("状态", tf.STATUS)
PRODUCT = Value("商品", tf.TEXT)
AMOUNT = Value("金额", tf.MONEY)
ORDER_NO = Value("订单号", tf.CODE)
UNTIL = Value("会员有效期至", tf.DATE)

KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("signup_confirmed", "报名成功", "会员在页面上报名后", "报名成功通知",
         {"match": MATCH, "start": START, "venue": VENUE, "member": MEMBER, "status": STATUS},
         "thing1=match\ntime2=start\nthing3=venue\nphrase4=status", "{member}，你已报名「{match}」，{start}，{venue}",
         {"status": "报名成功"}),
    Kind("signup_cancelled", "取消报名", "会员在页面上取消报名后", "取消报名通知",
         {"match": MATCH, "start": START, "member": MEMBER, "status": STATUS},
         "thing1=match\ntime2=start\nphrase3=status", "{member}，你已取消报名「{match}」（{start}）",
         {"status": "已取消"}),
    Kind("payment_received", "支付成功", "会员费支付成功后", "支付成功通知",
         {"product": PRODUCT, "amount": AMOUNT, "until": UNTIL, "order_no": ORDER_NO, "status": STATUS},
         "thing1=product\namount2=amount\ndate3=until\ncharacter_string4=order_no",
         "已收到{amount}（{product}），会员有效期至{until}，订单号 {order_no}", {"status": "支付成功"}),
    Kind("refund_made", "退款成功", "退款到账后", "退款成功通知",
         {"product": PRODUCT, "amount": AMOUNT, "reason": Value("退款原因", tf.TEXT, blank="无"),
          "order_no": ORDER_NO, "status": STATUS},
         "thing1=product\namount2=amount\nthing3=reason\ncharacter_string4=order_no",
         "已退款{amount}（{product}，订单号 {order_no}），原因：{reason}", {"status": "已退款"}),
    Kind("match_reminder", "比赛提醒", "比赛开始前（小时数见设置 JIANDONG_NOTICE_REMINDER_HOURS）", "比赛开始提醒",
         {"match": MATCH, "start": START, "venue": VENUE, "status": STATUS},
         "thing1=match\ntime2=start\nthing3=venue", "你报名的「{match}」将于{start}开始，地点：{venue}",
         {"status": "即将开赛"}),
    Kind("membership_expiring", "会员将到期", "会员到期前 7 天", "会员到期提醒",
         {"member": MEMBER, "until": UNTIL, "status": STATUS},
         "thing1=member\ndate2=until\nphrase3=status", "{member}，你的会员将于{until}到期", {"status": "即将到期"}),
    Kind("membership_last_day", "会员今日到期", "会员到期当天", "会员到期提醒",
         {"member": MEMBER, "until": UNTIL, "status": STATUS},
         "thing1=member\ndate2=until\nphrase3=status", "{member}，你的会员今天（{until}）到期", {"status": "今日到期"}),
    Kind("staff_notice", "俱乐部通知", "工作人员在后台发送时", "活动通知",
         {"title": Value("标题", tf.TEXT), "content": Value("内容", tf.TEXT), "time": Value("发送时间", tf.TIME)},
         "thing1=title\nthing2=content\ntime3=time", "{title}：{content}"),
)}
AUTOMATIC = tuple(name for name in KINDS if name != "staff_notice")


def written_values(kind: Kind, data: typing.Mapping[str, typing.Any], tz: dt.tzinfo) -> dict[str, str]:
    """Each value of the kind as a member reads it (the blank word where the event had nothing)."""
    merged = {**kind.fixed, **data}
    out = {}
    for name, value in kind.values.items():
        raw = merged.get(name)
        out[name] = value.blank if raw in (None, "") else tf.written(value.nature, raw, tz)
    return out


def template_data(kind: Kind, mapping: typing.Mapping[str, str], data: typing.Mapping[str, typing.Any],
                  tz: dt.tzinfo) -> dict[str, str]:
    """A template message's data: each mapped key's value inside its type's rule."""
    merged = {**kind.fixed, **data}
    out = {}
    for key, name in mapping.items():
        value = kind.values[name]
        raw = merged.get(name)
        out[key] = tf.value_for(key, tf.TEXT, value.blank, tz) if raw in (None, "") \
            else tf.value_for(key, value.nature, raw, tz)
    return out


def sms_params(kind: Kind, data: typing.Mapping[str, typing.Any], tz: dt.tzinfo) -> dict[str, str]:
    """TemplateParam of the kind's SMS template: ${match}, ${start}… all strings, each within Aliyun's limit."""
    return {name: tf.cut(text, SMS_VALUE_MAX) for name, text in written_values(kind, data, tz).items()}


def line(kind: Kind, data: typing.Mapping[str, typing.Any], tz: dt.tzinfo) -> str:
    """The notice as one line of text."""
    return kind.line.format(**written_values(kind, data, tz))


def templates_markdown() -> str:
    """The README's table of notice kinds: when each is sent, the template to pick, its default fields and
    the variables of its SMS template."""
    lines = ["| Notice | Sent | Template to pick (类目模板) | Default fields | SMS template variables |",
             "|---|---|---|---|---|"]
    for kind in KINDS.values():
        fields = ", ".join(f"`{key}` {kind.values[name].label}" for key, name in
                           tf.parse_mapping(kind.fields, kind.natures()).items())
        variables = ", ".join(f"`${{{name}}}`" for name in kind.values)
        lines.append(f"| {kind.label} (`{kind.name}`) | {kind.when} | {kind.template} | {fields} | {variables} |")
    return "\n".join(lines) + "\n"
