"""The audit log in staff's words (jiandong/admin/audit_view.py): every action the code records has a name,
changed fields have labels, money is in yuan, markup is text, long text is folded."""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import pkgutil
from pathlib import Path

import jiandong
from jiandong.admin import audit_view
from jiandong.admin.audit_view import Change, Value, action_label, changes
from jiandong.admin.crud import Section

ROOT = Path(jiandong.__file__).resolve().parent
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _literals(node: ast.expr) -> list[str] | None:
    """The action codes an argument can be: a string, or either branch of a conditional; None if computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        return None if body is None or orelse is None else body + orelse
    return None


def _argument(call: ast.Call, index: int, name: str) -> ast.expr | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == name), None)


def _sections() -> dict[str, Section]:
    """Every content section (admin/crud.py's Section) by the module that defines it."""
    for info in pkgutil.iter_modules([str(ROOT / "admin")]):
        importlib.import_module(f"jiandong.admin.{info.name}")
    found: dict[str, Section] = {}
    todo = list(Section.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        found[cls.__module__] = cls()
    return found


def recorded_actions() -> set[str]:
    """Every action code the source can write to the audit log, read from the record calls themselves:
    audit.record / audit.record_now with a literal code, and a content section's `<slug>.<what>` (the
    shared create / update / on / off / delete of admin/crud.py, and `section.record(request, "what")`)."""
    codes: set[str] = set()
    computed: list[str] = []
    sections = _sections()
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)):
                continue
            owner, method = node.func.value.id, node.func.attr
            if owner == "audit" and method in ("record", "record_now"):
                arg = _argument(node, 2, "action")
                found = _literals(arg) if arg is not None else None
                if found is None:
                    computed.append(f"{module}:{node.lineno}")
                else:
                    codes.update(found)
            elif method == "record" and owner not in ("audit", "self") and module in sections:
                arg = _argument(node, 1, "what")
                found = _literals(arg) if arg is not None else None
                assert found is not None, f"{module}:{node.lineno}: a computed action"
                codes.update(f"{sections[module].slug}.{what}" for what in found)
    # The one computed code is the sections' own (admin/crud.py, Section.record); any other would go unchecked.
    assert [c.rsplit(":", 1)[0] for c in computed] == ["jiandong.admin.crud"], computed
    for section in sections.values():
        whats = ["create", "update"] + (["on", "off"] if section.switch else []) + (
            ["delete"] if section.can_delete else [])
        codes.update(f"{section.slug}.{what}" for what in whats)
    return codes


def test_every_recorded_action_has_a_name():
    codes = recorded_actions()
    # The reading itself finds what it should (a service's, a section's shared one and its own).
    assert {"refund.create", "member.grant", "chat.mute", "teams.create", "configs.update", "lives.status",
            "member.disable", "member.enable"} <= codes
    assert "configs.delete" not in codes and "configs.on" not in codes
    assert sorted(codes - audit_view.ACTION_LABELS.keys()) == []
    # And no name for an action nothing records.
    assert sorted(audit_view.ACTION_LABELS.keys() - codes) == []


def test_action_names_and_an_unknown_code_as_itself():
    assert action_label("refund.create") == "发起退款"
    assert action_label("member.grant") == "手工开通会员"
    assert action_label("lives.status") == "修改直播状态"
    assert action_label("chat.mute") == "禁言"
    assert action_label("something.new") == "something.new"


def test_an_edit_shows_only_the_changed_fields_in_chinese():
    before = {"id": 3, "title": "尊享年卡", "price": 19900, "cost": 0, "amount": 100, "status": 1,
              "created_at": "2026-01-02T03:04:05+00:00"}
    after = {"title": "尊享年卡（新）", "price": "299.00", "cost": None, "amount": 100, "csrf_token": None}
    assert changes("products.update", before, after) == [
        Change("名称", Value("尊享年卡"), Value("尊享年卡（新）")),
        Change("价格", Value("199.00 元"), Value("299.00 元")),
        Change("原价", Value("0.00 元"), Value("（空）")),
    ]


def test_money_in_fen_is_shown_in_yuan_with_two_decimals():
    rows = changes("refund.create", {"status": 1, "refund_reserved": 0},
                   {"status": 3, "refund_reserved": 10000, "refund": {"out_refund_no": "R1", "amount": 10000}})
    assert [(c.label, c.old and c.old.text, c.new and c.new.text) for c in rows] == [
        ("状态", "已支付", "退款中"),
        ("累计退款（含处理中）", "0.00 元", "100.00 元"),
        ("退款单号", None, "R1"),
        ("退款金额", None, "100.00 元"),
    ]
    grant = changes("member.grant", {"member_status": 0, "expire": None},
                    {"order": "M1", "amount": 15000, "valid_from": "2026-12-05T10:00:00+00:00",
                     "valid_until": "2027-12-05T16:00:00+00:00"}, SHANGHAI)
    shown = {c.label: (c.old and c.old.text, c.new and c.new.text) for c in grant}
    # Before and after share no field: the old term, then the new one.
    assert shown["会员状态"] == ("非会员", None) and "会员到期" not in shown
    assert shown["金额"] == (None, "150.00 元")
    # Times in the club's zone; a membership's end at midnight is the day before, as staff entered it.
    assert shown["有效期开始"] == (None, "2026-12-05 18:00") and shown["有效期结束"] == (None, "2027-12-05（含当天）")
    # A product's amount is its stock, not money.
    assert changes("products.update", {"amount": 100}, {"amount": 99})[0] == Change("库存", Value("100"), Value("99"))


def test_chinese_and_markup_are_text_and_long_text_is_folded():
    html = "<p>尊享会员权益：</p>\n" + "<li>全年观赛</li>" * 30
    [row] = changes("configs.update", {"code": "member_rights", "value": "<p>旧</p>"},
                    {"code": "member_rights", "value": html})
    assert row.label == "值" and row.old == Value("<p>旧</p>") and not row.old.folded
    assert row.new.text == html and row.new.folded and row.new.head == "<p>尊享会员权益：</p>…"
    long_line = "长" * 100
    assert Value(long_line).folded and Value(long_line).head == "长" * audit_view.FOLD_AT + "…"
    # Creation shows the new values only, deletion the old ones; booleans and lists in words.
    assert changes("competitions.create", None, {"is_hot": True, "team_ids": [1, 2]}) == [
        Change("热门赛事", None, Value("是")), Change("参赛球队", None, Value("1、2"))]
    assert changes("staff.update", {"role": "editor", "is_active": True}, {"role": "owner", "is_active": True}) == [
        Change("角色", Value("编辑"), Value("所有者"))]
    assert changes("teams.off", None, None) == []
    # A field no table names is shown by its own name.
    assert changes("teams.update", {"mystery": 1}, {"mystery": 2}) == [Change("mystery", Value("1"), Value("2"))]


def recorded_target_kinds() -> set[str]:
    """The kinds of target ("<kind>:<id>") the source records: audit.record / record_now's target argument,
    and a content section's slug."""
    kinds = {section.slug for section in _sections().values()}
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "audit"
                    and node.func.attr in ("record", "record_now")):
                arg = _argument(node, 3, "target")
                if isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                    kinds.add(str(arg.values[0].value).partition(":")[0])
    return kinds


def test_every_recorded_target_has_a_noun_and_its_page_exists():
    from jiandong.admin import create_admin_app
    from jiandong.settings import Settings

    kinds = recorded_target_kinds()
    assert {"user", "order", "admin", "room", "competitions", "teams", "configs"} <= kinds
    assert sorted(kinds - audit_view.TARGETS.keys()) == []
    app = create_admin_app(Settings(), ROOT.parent / "templates")
    infos = [r.resource.get_info() for r in app.router.routes() if r.method == "GET" and r.resource is not None]
    for kind, (_, path) in audit_view.TARGETS.items():
        if path is not None:
            sample = path.format("12" if kind not in ("config", "configs") else "about_us")
            assert any(info.get("path") == sample or ("pattern" in info and info["pattern"].fullmatch(sample))
                       for info in infos), (kind, sample)


def test_a_target_is_shown_as_its_noun_and_opened_from_the_log():
    assert audit_view.target_view("competitions:36") == audit_view.Target("赛事 #36", "/competitions/36")
    assert audit_view.target_view("user:3") == audit_view.Target("会员 #3", "/members/3")
    assert audit_view.target_view("config:banned_words") == audit_view.Target("配置项 banned_words",
                                                                               "/configs/banned_words")
    assert audit_view.target_view("ip:10.1.2.0/24") == audit_view.Target("地址段 10.1.2.0/24", None)
    assert audit_view.target_view("weird") == audit_view.Target("weird", None)


def test_a_staff_notice_and_a_notice_setting_read_in_staff_words():
    sent = changes("notice.send", None, {"audience": "match", "audience_id": 7, "title": "集合", "content": "8:30",
                                         "url": "", "recipients": 12})
    assert [c.label for c in sent] == ["发送对象", "对象编号或天数", "标题", "内容", "收到的人数"]
    edited = changes("notice.settings", {"enabled": True, "template_id": "", "fields": {}, "sms_template_code": ""},
                     {"enabled": True, "template_id": "T1", "fields": {"thing1": "title"},
                      "sms_template_code": "SMS_1"})
    assert [c.label for c in edited] == ["公众号模板 ID", "短信模板", "模板字段对应 thing1"]
