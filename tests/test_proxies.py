"""The client's address behind trusted proxies: what rate limits and WeChat Pay are given."""

import pytest
from aiohttp import web

from jiandong.app import create_app
from jiandong.web.auth import public
from jiandong.web.params import client_ip
from jiandong.web.responses import json_response
from tests.fakes import wechat as fake_wechat
from tests.helpers.orders import PRE_ORDER, add_product, commit, wx_buyer


@pytest.fixture
def whoami(aiohttp_client, settings):
    """`await whoami(headers, **settings)`: the client IP the app takes a request to come from."""

    async def ask(headers: dict[str, str], **overrides: object) -> str:
        app = create_app(settings.replace(**overrides))

        @public
        async def echo(request: web.Request) -> web.Response:
            return json_response({"ip": client_ip(request)})

        app.router.add_get("/api/v1/test/whoami", echo)
        client = await aiohttp_client(app)
        resp = await client.get("/api/v1/test/whoami", headers=headers)
        assert resp.status == 200, await resp.text()
        return (await resp.json())["ip"]

    return ask


@pytest.mark.parametrize(
    ("forwarded_for", "trusted", "expected"),
    [
        # The proxy (the loopback peer) appended the real address on the right; the left is the client's.
        ("10.0.0.1, 198.51.100.7", ("127.0.0.0/8",), "198.51.100.7"),
        ("evil, not-an-ip, 198.51.100.7", ("127.0.0.0/8",), "198.51.100.7"),
        ("198.51.100.7", ("127.0.0.0/8",), "198.51.100.7"),
        # Two proxies we trust: the client is past both of them.
        ("203.0.113.9, 198.51.100.7, 10.1.2.3", ("127.0.0.1", "10.0.0.0/8"), "198.51.100.7"),
        ("2001:db8::1, 10.1.2.3", ("127.0.0.0/8", "10.0.0.0/8"), "2001:db8::1"),
        # Every hop is a proxy we trust: the leftmost one is the client.
        ("10.1.2.3", ("127.0.0.0/8", "10.0.0.0/8"), "10.1.2.3"),
        # The peer is no proxy of ours: its X-Forwarded-For is its own invention.
        ("198.51.100.7", ("192.0.2.1",), "127.0.0.1"),
    ],
)
async def test_client_is_the_rightmost_address_that_is_not_a_trusted_proxy(whoami, forwarded_for, trusted, expected):
    headers = {"X-Forwarded-For": forwarded_for}
    assert await whoami(headers, trust_proxy=True, trusted_proxies=trusted) == expected


async def test_without_trust_proxy_the_header_is_ignored(whoami):
    assert await whoami({"X-Forwarded-For": "198.51.100.7"}) == "127.0.0.1"


@pytest.mark.parametrize(
    ("trust_proxy", "expected"),
    # Without a proxy in front the header is the client's own invention: the peer is the client.
    [(True, "198.51.100.7"), (False, "127.0.0.1")],
)
async def test_wechat_pay_is_given_the_same_client_ip(make_client, wechat, merchant, sql, trust_proxy, expected):
    client = await make_client(**fake_wechat.settings_for(wechat), **merchant.settings(), trust_proxy=trust_proxy)
    token = await wx_buyer(client, wechat, sql)
    order = await commit(client, token, add_product(sql))
    resp = await client.post(PRE_ORDER, data={"id": order["id"]},
                             headers={"token": token, "X-Forwarded-For": "10.9.9.9, 198.51.100.7"})
    assert resp.status == 200, await resp.text()
    # v2's spbill_create_ip, v3's scene_info.payer_client_ip.
    assert merchant.client_ips() == [expected]
