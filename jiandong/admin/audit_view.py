"""What the audit log shows in staff's words: each action's name, each changed field's label and its old and
new value as text (money in yuan, times in the club's zone, codes by their names). A code none of the tables
names is shown as it is."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import typing

from ..lib import formats
from ..services.admins import ROLE_LABELS
from ..services.lives import STATUS_LABELS as LIVE_STATUS_LABELS
from ..services.members import STATUS_LABELS as MEMBER_STATUS_LABELS
from ..services.order_search import STATUS_LABELS as ORDER_STATUS_LABELS

# Every action the console records (services/*.py and admin/*.py; a content section's `<slug>.<what>` from
# admin/crud.py). tests/test_admin_audit_view.py reads the record calls and fails on a code missing here.
ACTION_LABELS = {
    "account.password": "修改自己的密码",
    "staff.create": "新建员工账号",
    "staff.update": "修改员工账号",
    "staff.password": "重置员工密码",
    "staff.unlock": "解除登录限制",
    "member.grant": "手工开通会员",
    "member.disable": "禁用会员",
    "member.enable": "恢复会员",
    "order.query": "向微信支付查询订单",
    "order.close": "关闭订单",
    "refund.create": "发起退款",
    "refund.check": "查询退款结果",
    "feedback.handle": "处理反馈",
    "notice.settings": "修改通知设置",
    "notice.send": "群发通知",
    "chat.delete": "删除聊天消息",
    "chat.mute": "禁言",
    "chat.unmute": "解除禁言",
    "chat.banned_words": "修改敏感词",
    "competitions.create": "新建赛事",
    "competitions.update": "修改赛事",
    "competitions.on": "发布赛事",
    "competitions.off": "下架赛事",
    "competitions.delete": "删除赛事",
    "competitions.copy": "复制赛事",
    "signups.add": "添加报名",
    "signups.remove": "移除报名",
    "signups.attendance": "登记到场",
    "results.update": "录入比赛结果",
    "results.logo": "更换对手队徽",
    "results.clear": "清除比赛结果",
    "teams.create": "新建球队",
    "teams.update": "修改球队",
    "teams.on": "启用球队",
    "teams.off": "停用球队",
    "teams.delete": "删除球队",
    "teams.member_add": "球员入队",
    "teams.member_leave": "球员离队",
    "players.create": "新建球员卡",
    "players.update": "修改球员卡",
    "players.on": "启用球员卡",
    "players.off": "停用球员卡",
    "players.delete": "删除球员卡",
    "players.import": "导入球员卡",
    "videos.create": "新建视频",
    "videos.update": "修改视频",
    "videos.on": "发布视频",
    "videos.off": "下架视频",
    "videos.delete": "删除视频",
    "lives.create": "新建直播",
    "lives.update": "修改直播",
    "lives.on": "发布直播",
    "lives.off": "下架直播",
    "lives.delete": "删除直播",
    "lives.status": "修改直播状态",
    "banners.create": "新建轮播图",
    "banners.update": "修改轮播图",
    "banners.on": "启用轮播图",
    "banners.off": "停用轮播图",
    "banners.delete": "删除轮播图",
    "products.create": "新建会员业务",
    "products.update": "修改会员业务",
    "products.on": "上架会员业务",
    "products.off": "停售会员业务",
    "products.delete": "删除会员业务",
    "configs.create": "新建配置项",
    "configs.update": "修改配置项",
}

# The fields of before / after (a nested field as "parent.field"), and the columns of the rows a content
# section records when it edits or deletes one.
FIELD_LABELS = {
    # Notices: a staff notice sent, a kind's settings.
    "audience": "发送对象",
    "audience_id": "对象编号或天数",
    "url": "链接",
    "recipients": "收到的人数",
    "enabled": "开启",
    "template_id": "公众号模板 ID",
    "fields": "模板字段对应",
    "sms_template_code": "短信模板",
    "id": "编号",
    "name": "名称",
    "title": "标题",
    "summary": "简介",
    "description": "描述",
    "content": "内容",
    "status": "状态",
    "sort": "排序",
    "created_at": "创建时间",
    "updated_at": "更新时间",
    "publish_time": "发布时间",
    "username": "账号",
    "role": "角色",
    "reason": "原因",
    "is_active": "启用",
    "failures": "连续登录失败次数",
    "wait": "需等待",
    "member_status": "会员状态",
    "expire": "会员到期",
    "order": "订单号",
    "amount": "金额",
    "valid_from": "有效期开始",
    "valid_until": "有效期结束",
    "refund_reserved": "累计退款（含处理中）",
    "refund": "退款",
    "refund.out_refund_no": "退款单号",
    "refund.amount": "退款金额",
    "price": "价格",
    "cost": "原价",
    "total_price": "合计",
    "pay_amount": "实付",
    "handled": "已处理",
    "note": "处理说明",
    "message": "消息",
    "room_id": "聊天室",
    "minutes": "时长（分钟）",
    "until": "截止",
    "value": "值",
    "code": "编码",
    "rich": "富文本",
    "logo": "队徽",
    "logo_file": "队徽",
    "player_id": "球员",
    "joined_at": "入队时间",
    "member": "在队记录",
    "left_at": "离队时间",
    "cn_name": "中文名",
    "number": "球衣号码",
    "position": "位置",
    "sex": "性别",
    "birthday": "出生日期",
    "birth_addr": "出生地点",
    "mobile": "手机号码",
    "stature": "身高（厘米）",
    "weight": "体重（公斤）",
    "native_place": "籍贯",
    "nation": "民族",
    "photo": "个人近照",
    "photo_file": "个人近照",
    "school": "学校",
    "individual": "个人简介",
    "experience": "成长经历",
    "feature": "技术特点",
    "honor": "个人荣誉",
    "comment": "评价",
    "user_id": "关联用户",
    "user_lookup": "关联用户",
    "play_time": "比赛时间",
    "team_ids": "参赛球队",
    "score": "比分 / 结果",
    "cover": "封面图",
    "main_img_url": "封面图",
    "notes": "备注",
    "is_hot": "热门赛事",
    "capacity": "报名人数上限",
    "venue": "比赛地点",
    "copied_from": "复制自赛事",
    "apply_deadline": "报名截止时间",
    "competition_id": "所属赛事",
    "type": "类型",
    "video_file": "视频文件",
    "video_url": "视频地址",
    "file_id": "视频文件",
    "browse_num": "浏览数",
    "app_name": "AppName",
    "stream_name": "流名称",
    "generate": "生成推流和播放地址",
    "plug_flow": "推流地址",
    "play_rtmp": "RTMP 播放地址",
    "play_flv": "FLV 播放地址",
    "play_m3u8": "M3U8 播放地址",
    "online_show": "显示在线人数",
    "live_status": "直播状态",
    "live_changed_at": "直播状态变化时间",
    "publisher": "推流者",
    "image": "图片",
    "img_id": "图片",
    "img_url": "图片",
    "jump_url": "链接",
    "valid_time": "有效期（年）",
    "remark": "备注",
    "num": "已售",
}
# Where a section's field means something else than elsewhere (a product's `amount` is its stock).
SECTION_FIELD_LABELS = {
    "products": {"amount": "库存", "title": "名称", "content": "介绍"},
    "configs": {"name": "名称"},
    "banners": {"position": "位置"},
    "results": {"team": "本队", "opponent": "对手", "club_score": "本队得分", "opponent_score": "对手得分",
                "periods": "各节比分", "box": "技术统计"},
    "signups": {"username": "会员", "user_id": "用户 ID", "attended": "到场", "count": "人数",
                "created_at": "报名时间"},
    # An import's counts (services/rosters.commit).
    "players": {"file": "文件", "rows": "行数", "created": "新建球员卡", "updated": "更新球员卡",
                "joined": "加入球队", "skipped": "未导入行数"},
}
# Money, stored in fen (an integer); a form's yuan (a decimal's text) is shown as it is.
MONEY_FIELDS = frozenset({"refund_reserved", "refund.amount", "price", "cost", "total_price", "pay_amount"})
# Money only in these actions (elsewhere `amount` is a stock).
ACTION_MONEY_FIELDS = {"member.grant": frozenset({"amount"})}
# Codes shown by their names, per field (the order status only where an order's state is recorded).
VALUE_LABELS: dict[str, dict[typing.Any, str]] = {
    "role": ROLE_LABELS,
    "member_status": MEMBER_STATUS_LABELS,
    "live_status": LIVE_STATUS_LABELS,
    "sex": formats.SEX_LABELS,
}
ORDER_ACTIONS = ("order.", "refund.")
# The ends of a membership: an end at local midnight is the whole day before (render.end_label).
END_FIELDS = frozenset({"expire", "valid_until"})

# Text longer than this (or of more than one line) is folded: its start shown, the whole a click away.
FOLD_AT = 60
EMPTY = "（空）"


@dataclasses.dataclass(frozen=True)
class Value:
    text: str

    @property
    def folded(self) -> bool:
        return len(self.text) > FOLD_AT or "\n" in self.text

    @property
    def head(self) -> str:
        """The start of a folded text: its first line, cut short."""
        first = self.text.split("\n", 1)[0]
        return first[:FOLD_AT] + "…" if len(first) > FOLD_AT or first != self.text else first


@dataclasses.dataclass(frozen=True)
class Change:
    label: str
    old: Value | None  # None: the field is not in the entry's before (a creation) / after (a deletion)
    new: Value | None


# What an entry acted on ("<kind>:<id>", as services/*.py and admin/crud.py record it): the noun staff read
# and the console page that shows it (None: no page of its own). The content sections' kinds are their slugs;
# tests/test_admin_audit_view.py checks every section and every recorded kind is here.
TARGETS: dict[str, tuple[str, str | None]] = {
    "user": ("会员", "/members/{}"),
    "order": ("订单", "/orders/{}"),
    "admin": ("员工", "/staff/{}"),
    "room": ("直播间", "/chat/{}"),
    "feedback": ("反馈", None),
    "notice_kind": ("通知设置", "/notices/settings"),
    "campaign": ("群发通知", "/notices/campaigns/{}"),
    "ip": ("地址段", None),
    "config": ("配置项", "/configs/{}"),
    "configs": ("配置项", "/configs/{}"),
    "banners": ("轮播图", "/banners/{}"),
    "competitions": ("赛事", "/competitions/{}"),
    "lives": ("直播", "/lives/{}"),
    "players": ("球员卡", "/players/{}"),
    "products": ("会员业务", "/products/{}"),
    "teams": ("球队", "/teams/{}"),
    "videos": ("视频", "/videos/{}"),
}


@dataclasses.dataclass(frozen=True)
class Target:
    text: str  # 赛事 #36
    path: str | None  # under the console's prefix: /competitions/36


def target_view(target: str) -> Target:
    """An entry's target in staff's words, with the page to open it; an unknown kind as it is."""
    kind, _, ident = target.partition(":")
    if kind not in TARGETS or not ident:
        return Target(target, None)
    noun, path = TARGETS[kind]
    return Target(f"{noun} #{ident}" if ident.isdigit() else f"{noun} {ident}", path and path.format(ident))


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, action)


def field_label(action: str, key: str) -> str:
    section = action.partition(".")[0]
    if label := SECTION_FIELD_LABELS.get(section, {}).get(key) or FIELD_LABELS.get(key):
        return label
    # A mapping's entry (a notice kind's template fields: fields.thing1) under its mapping's name.
    head, dot, rest = key.partition(".")
    return f"{FIELD_LABELS[head]} {rest}" if dot and head in FIELD_LABELS else key


def _money(value: typing.Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{formats.fmt_money(value)} 元"
    try:
        return f"{decimal.Decimal(str(value)).quantize(decimal.Decimal('0.01'))} 元"
    except (decimal.InvalidOperation, ValueError):
        return None


def _time(text: str, tz: dt.tzinfo | None, end: bool = False) -> str | None:
    """An ISO time as the log stores it, as a local minute (an end at midnight as the day before, the way
    staff entered it); a date stays a date."""
    if len(text) < 16 or text[4] != "-" or text[10] not in "T ":
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if tz is not None and value.tzinfo is not None:
        value = value.astimezone(tz)
    if end and value.time() == dt.time():
        return f"{(value - dt.timedelta(days=1)).date().isoformat()}（含当天）"
    return value.strftime("%Y-%m-%d %H:%M")


def value_text(action: str, key: str, value: typing.Any, tz: dt.tzinfo | None = None) -> str:
    """One value as staff read it."""
    if value is None or value == "":
        return EMPTY
    leaf = key.rpartition(".")[2]
    if key in MONEY_FIELDS or leaf in ACTION_MONEY_FIELDS.get(action, ()):
        if (money := _money(value)) is not None:
            return money
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(value_text(action, key, v, tz) for v in value) or EMPTY
    if isinstance(value, dict):
        return "；".join(f"{field_label(action, f'{key}.{k}')}：{value_text(action, f'{key}.{k}', v, tz)}"
                        for k, v in value.items()) or EMPTY
    labels = ORDER_STATUS_LABELS if key == "status" and action.startswith(ORDER_ACTIONS) else VALUE_LABELS.get(key)
    if labels is not None and value in labels:
        return labels[value]
    if isinstance(value, str) and (local := _time(value, tz, leaf in END_FIELDS)) is not None:
        return local
    return str(value)


def _flat(values: typing.Any) -> dict[str, typing.Any]:
    """The fields of a before / after, a nested object's as "parent.field"; a bare value as field "value"."""
    if not isinstance(values, dict):
        return {"value": values}
    flat: dict[str, typing.Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def changes(action: str, before: typing.Any, after: typing.Any, tz: dt.tzinfo | None = None) -> list[Change]:
    """(label, old, new) for each field of an entry; of an edit (before and after), only the changed ones."""
    old = _flat(before) if before is not None else {}
    new = _flat(after) if after is not None else {}
    # A section's edit records the stored row beside the submitted form: the row's other columns were not
    # edited. An entry whose before and after share no field (a grant: the old term, the new one) shows both.
    shared = bool(old.keys() & new.keys())
    rows = []
    for key in [*old, *(k for k in new if k not in old)]:
        if before is not None and after is not None and key not in new and shared:
            continue
        # A field on one side only (a creation's, a deletion's, a refund's new number) shows that side.
        was = Value(value_text(action, key, old[key], tz)) if key in old else None
        now = Value(value_text(action, key, new[key], tz)) if key in new else None
        if was == now or (was is None and now == Value(EMPTY)) or (now is None and was == Value(EMPTY)):
            continue  # unchanged, or a field on one side only and empty there (an unused file field)
        rows.append(Change(field_label(action, key), was, now))
    return rows
