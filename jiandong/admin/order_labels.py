"""What the order page shows of payment and refund records in staff's words: where a record came from, what
became of it, and the order snapshot's fields. One table each; a value none of them names is shown as it is."""

from __future__ import annotations

import html
import json
import re
import typing

# Where a payment or refund record came from (services/payments.py, services/refunds.py).
SOURCE_LABELS = {
    "notify": "微信支付通知",
    "orderquery": "向微信支付查询订单",
    "refundquery": "向微信支付查询退款",
    "refund": "提交退款",
    "dev": "开发环境模拟支付",
    "admin": "后台操作",
}
# The first word of an outcome; what follows its colon is the detail (WeChat Pay's field names, kept as they are).
OUTCOME_LABELS = {
    "paid": "已入账",
    "duplicate": "重复（已处理过，未改变）",
    "rejected": "已拒绝",
    "success": "退款成功",
    "processing": "退款处理中",
    "change": "退款异常（需人工处理）",
    "closed": "退款已关闭",
    "failed": "退款失败",
}
# The fields of an order's snapshot: the product as the member saw it when ordering (services/orders.py
# product_view, services/members.py; the columns of `businesses` in sql/001_schema.sql), then what was bought.
# One label each and no label twice: the page shows them as one list, in this order (a stored snapshot's keys
# come back in jsonb's order, shortest first).
SNAPSHOT_LABELS = {
    "id": "商品 ID",
    "title": "商品",
    "num": "编号",
    "price": "单价（元）",
    "cost": "原价（元）",
    "count": "数量",
    "total_price": "合计（元）",
    "valid_time": "有效期（年）",
    "specs": "规格",
    "people": "享有人数",
    "istui": "热销商品",
    "remark": "备注",
    "content": "介绍",
    "audit_time": "审核时间",
}
# The product's category id: a number that tells staff nothing (the category is not shown anywhere).
SNAPSHOT_HIDDEN = frozenset({"s_id"})
# 0/1 flags shown as 是/否.
SNAPSHOT_FLAGS = frozenset({"istui"})
# Rich text (the product's introduction, edited as HTML).
SNAPSHOT_HTML = frozenset({"content"})
TAG = re.compile(r"<[^>]*>")


def source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, source)


def outcome_label(outcome: str) -> str:
    """`paid` -> 已入账; `rejected: refund_fee 1 is not 19900` -> 已拒绝：refund_fee 1 is not 19900."""
    head, _, detail = outcome.partition(":")
    label = OUTCOME_LABELS.get(head.strip(), head)
    return f"{label}：{detail.strip()}" if detail else label


def text_of(value: str) -> str:
    """The text of an HTML value (tags dropped, entities decoded: the template escapes it again)."""
    return html.unescape(" ".join(TAG.sub(" ", value).split()))


def snapshot_rows(snapshot: typing.Any) -> list[tuple[str, str]]:
    """(label, value) of each item field of a snapshot (a dict, or a list of them); nested values as text, HTML
    as its text, a field staff have no use for left out."""
    items = snapshot if isinstance(snapshot, list) else [snapshot]
    rows = []
    for item in items:
        if not isinstance(item, dict):
            rows.append(("内容", str(item)))
            continue
        order = list(SNAPSHOT_LABELS)
        for key, value in sorted(item.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
            if key in SNAPSHOT_HIDDEN:
                continue
            if isinstance(value, bool) or (key in SNAPSHOT_FLAGS and value in (0, 1)):
                shown = "是" if value else "否"
            elif isinstance(value, (dict, list)):
                shown = json.dumps(value, ensure_ascii=False, default=str)
            elif key in SNAPSHOT_HTML and isinstance(value, str):
                shown = text_of(value)
            else:
                shown = "" if value is None else str(value)
            rows.append((SNAPSHOT_LABELS.get(key, key), shown))
    return rows
