"""Console orders: the filtered list and its totals, CSV (Excel's UTF-8 with BOM) and XLSX exports read back,
an order's page, asking WeChat Pay now, closing an unpaid order, and who may do what."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import openpyxl

from tests.fakes import wechat as fake_wechat
from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.api import call
from tests.helpers.merchants import CLOSE, QUERY
from tests.helpers.orders import PRE_ORDER, add_product, commit, dev_buyer, minutes_pass, order_row, wx_buyer


def add_order(sql, user_id: int, product: int, no: str, price: int, status: int = 1, day: str = "2030-03-01",
              kind: str = "wechat") -> int:
    paid = status in (1, 3, 4)
    return sql("""
        INSERT INTO orders (order_no, user_id, business_id, name, price, total_price, pay_amount, status, snap_items,
                            create_time, pay_time, transaction_id, kind, remark)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '[]', %s::timestamptz, %s::timestamptz, %s, %s, %s) RETURNING id""",
               no, user_id, product, "年度会员", price, price, price if paid else 0, status, f"{day} 10:00+08",
               f"{day} 10:05+08" if paid else None, f"4200{no}" if paid and kind == "wechat" else None, kind,
               "=SUM(A1)" if no == "T0000000004" else "")[0]["id"]


def add_user(sql, name: str, phone: str) -> int:
    return sql("INSERT INTO users (openid, username, mobile) VALUES (%s, %s, %s) RETURNING id", f"o-{name}", name,
               phone)[0]["id"]


async def signed_in(client, sql, role: str = "owner"):
    add_admin(sql, "boss", role)
    assert (await sign_in(client, "boss")).status == 302


async def prepaid_order(client, wechat, sql) -> dict:
    """An editor signed in, and a buyer's order with a prepay at the fake WeChat Pay."""
    await signed_in(client, sql, "editor")
    product = add_product(sql)
    token = await wx_buyer(client, wechat, sql)
    order = await commit(client, token, product)
    assert (await call(client, "POST", PRE_ORDER, token, id=order["id"]))[0] == 200
    return order


def listed(text: str) -> list[str]:
    return [part.split("<", 1)[0] for part in text.split('">T')[1:]]


async def test_list_filters_totals_and_exports_agree(client, sql):
    await signed_in(client, sql)
    product = add_product(sql)
    zhang, li = add_user(sql, "张三", "13900000001"), add_user(sql, "李四", "13900000002")
    add_order(sql, zhang, product, "T0000000001", 19900, 1, "2030-03-01")
    add_order(sql, zhang, product, "T0000000002", 19900, 0, "2030-03-02")
    add_order(sql, li, product, "T0000000003", 9900, 1, "2030-03-03")
    add_order(sql, li, product, "T0000000004", 50000, 4, "2030-03-10")
    sql("INSERT INTO refunds (out_refund_no, order_id, amount, reason, status) SELECT 'RT00000004', id, 50000, '退',"
        " 'success' FROM orders WHERE order_no = 'T0000000004'")
    resp = await client.get("/admin/orders")
    text = await resp.text()
    assert resp.status == 200 and "共 4 笔" in text
    # The unpaid order (199.00) counts in no total.
    assert "已付订单金额 <strong>798.00</strong>" in text
    assert "实收 <strong>798.00</strong>" in text and "已退款 <strong>500.00</strong>" in text
    cases = {
        "status=1": ["T0000000003", "T0000000001"],
        "from=2030-03-02&to=2030-03-03": ["T0000000003", "T0000000002"],
        "user=李四": ["T0000000004", "T0000000003"],
        "user=13900000001": ["T0000000002", "T0000000001"],
        f"user=%23{zhang}": ["T0000000002", "T0000000001"],
        "min=100&max=199.00": ["T0000000002", "T0000000001"],
        "status=1&user=李四&min=50": ["T0000000003"],
        "kind=manual": [],
    }
    for qs, expected in cases.items():
        text = await (await client.get(f"/admin/orders?{qs}")).text()
        assert ["T" + n for n in listed(text)] == expected, qs
        # The exports hold the same rows as the list, in its order, whole.
        resp = await client.get(f"/admin/orders/export.csv?{qs}")
        assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert "attachment" in resp.headers["Content-Disposition"]
        body = await resp.read()
        assert body.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
        assert rows[0][:2] == ["订单号", "用户ID"] and [r[0] for r in rows[1:]] == expected, qs
        resp = await client.get(f"/admin/orders/export.xlsx?{qs}")
        assert resp.headers["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
        sheet = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
        cells = [list(r) for r in sheet.iter_rows(values_only=True)]
        assert cells[0] == rows[0] and [r[0] for r in cells[1:]] == expected, qs
    # One row in full, both ways: names in Chinese, yuan as numbers, a formula kept as text.
    body = await (await client.get("/admin/orders/export.csv?user=李四")).read()
    first = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))[1]
    assert first[2:8] == ["李四", "13900000002", "年度会员", "500.00", "500.00", "500.00"]
    assert first[8:10] == ["已退款", "微信支付"] and first[10] == "2030-03-10 10:00:00" and first[13] == "'=SUM(A1)"
    sheet = openpyxl.load_workbook(io.BytesIO(await (await client.get("/admin/orders/export.xlsx?user=李四")).read()))
    row = [c.value for c in next(sheet.active.iter_rows(min_row=2, max_row=2))]
    assert row[2:8] == ["李四", "13900000002", "年度会员", 500, 500, 500] and row[13] == "'=SUM(A1)"
    # Amounts show two decimals and times are dates Excel can sort and compute with.
    cell = next(sheet.active.iter_rows(min_row=2, max_row=2))
    assert cell[5].number_format == "0.00"
    assert row[10] == dt.datetime(2030, 3, 10, 10, 0) and cell[10].is_date


async def test_order_page_shows_snapshot_notifications_and_refunds(merchant_client, wechat, merchant, sql):
    order = await prepaid_order(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    assert (await merchant.notify(merchant_client, order["order_no"]))[1]
    assert (await merchant.notify(merchant_client, order["order_no"]))[1]
    text = await (await merchant_client.get(f"/admin/orders/{order['id']}")).text()
    assert order["order_no"] in text and "已支付" in text and "建东体育年度会员" in text
    # In staff's words: where each record came from, what became of it, the snapshot's fields.
    assert text.count("<td data-label=\"来源\">微信支付通知</td>") == 2
    assert "<td data-label=\"结果\">已入账</td>" in text
    assert "<td data-label=\"结果\">重复（已处理过，未改变）</td>" in text
    assert "<dt>合计（元）</dt>" in text and "<dt>有效期（年）</dt>" in text and "total_price" not in text
    # Editors see the order but not the refund form.
    assert "out_refund_no" not in text and (await merchant_client.get("/admin/orders/999999")).status == 404


async def test_ask_wechat_pay_now_applies_a_missing_payment(merchant_client, wechat, merchant, sql):
    order = await prepaid_order(merchant_client, wechat, sql)
    paid = merchant.pay(order["order_no"])  # paid, but the notification is lost
    path = f"/admin/orders/{order['id']}"
    resp = await post_form(merchant_client, f"{path}/query", token_from=path)
    assert resp.status == 302 and merchant.count(QUERY) == 1
    row = order_row(sql, order["id"])
    assert row["status"] == 1 and row["transaction_id"] == paid.transaction_id
    assert "微信支付确认已支付，订单已更新" in await (await merchant_client.get(path)).text()
    [entry] = sql("SELECT action, target FROM audit_log")
    assert entry == {"action": "order.query", "target": f"order:{order['id']}"}


async def test_close_an_unpaid_order(merchant_client, wechat, merchant, sql):
    order = await prepaid_order(merchant_client, wechat, sql)
    minutes_pass(sql, merchant, 6, order["id"])
    path = f"/admin/orders/{order['id']}"
    resp = await post_form(merchant_client, f"{path}/close", token_from=path)
    assert resp.status == 302
    row = order_row(sql, order["id"])
    assert row["status"] == -1 and row["wechat_closed_at"] is not None
    assert merchant.state(order["order_no"]) == "CLOSED"
    assert [sent.out_trade_no for sent in merchant.sent(CLOSE)] == [order["order_no"]]
    # A paid (or closed) order cannot be closed.
    resp = await post_form(merchant_client, f"{path}/close", token_from=path)
    assert resp.status == 409 and merchant.count(CLOSE) == 1


async def test_the_order_page_names_what_staff_did(client, sql):
    """A refund made on the order page is listed in its operation list in staff's words, money in yuan."""
    token = await dev_buyer(client, sql)
    order = await commit(client, token, add_product(sql))
    assert (await call(client, "POST", PRE_ORDER, token, id=order["id"]))[0] == 200
    assert (await call(client, "POST", "/api/v1/pay/dev/complete", token, id=order["id"]))[0] == 200
    await signed_in(client, sql)
    path = f"/admin/orders/{order['id']}"
    number = (await (await client.get(path)).text()).split('name="out_refund_no" value="', 1)[1].split('"', 1)[0]
    form = {"amount": "100.00", "reason": "赛事取消", "out_refund_no": number}
    resp = await post_form(client, f"{path}/refund", form, token_from=path)
    assert resp.status == 302
    page = await (await client.get(path)).text()
    history = re.sub(r">\s+<", "><", page.split("<h2>操作记录</h2>", 1)[1])
    assert '<strong title="refund.create">发起退款</strong>' in history and "\\u" not in page
    assert '<span class="field">累计退款（含处理中）</span><span class="old">0.00 元</span>' in history
    # A dev-mode refund completes at once: the entry claims no state the order is not in.
    assert "退款中" not in history and "已支付" not in history
    assert '<span class="new">100.00 元</span>' in history and "refund_reserved" not in page
    assert '<span class="field">退款单号</span><span class="new">' + number in history


async def test_orders_need_a_signed_in_editor(make_client, wechat, merchant, sql):
    client = await make_client(**fake_wechat.settings_for(wechat), **merchant.settings())
    resp = await client.get("/admin/orders/export.csv", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/admin/login")
    await signed_in(client, sql, "moderator")
    for path in ("/admin/orders", "/admin/orders/export.csv", "/admin/orders/export.xlsx", "/admin/orders/1"):
        assert (await client.get(path)).status == 403, path


async def test_the_snapshot_names_every_field_it_holds_in_staff_words(client, sql):
    """Whatever a committed order's snapshot holds has a label (or is hidden), each label once; the product's
    HTML content reads as text."""
    from jiandong.admin.order_labels import SNAPSHOT_HIDDEN, SNAPSHOT_LABELS

    token = await dev_buyer(client, sql)
    content = "<p>全年赛事报名</p><ul>" + "<li>主场观赛、会员专属座位与球员见面会</li>" * 5 + "</ul>"
    product = add_product(sql, audit_time="2026-03-01 10:00+08", content=content)
    order = await commit(client, token, product)
    await signed_in(client, sql, "editor")
    [snapshot] = order_row(sql, order["id"])["snap_items"]
    assert set(snapshot) - SNAPSHOT_HIDDEN <= set(SNAPSHOT_LABELS), set(snapshot) - set(SNAPSHOT_LABELS)
    text = await (await client.get(f"/admin/orders/{order['id']}")).text()
    section = text.split("<h2>下单快照</h2>", 1)[1].split("</section>", 1)[0]
    labels = re.findall(r"<dt>([^<]*)</dt>", section)
    # In the table's order, whatever order the stored keys come back in.
    assert labels == [label for key, label in SNAPSHOT_LABELS.items() if key in snapshot], labels
    assert len(set(labels)) == len(labels) and not set(labels) & set(snapshot)
    assert "全年赛事报名" in section and "&lt;p&gt;" not in section and "<p>" not in section and "<li>" not in section
    # A long introduction is folded to its start.
    assert re.search(r"<dt>介绍</dt><dd><details><summary>全年赛事报名 主场观赛", section)
    for label in ("数量", "原价（元）", "编号", "规格", "享有人数", "备注", "审核时间", "热销"):
        assert any(label in shown for shown in labels), label
