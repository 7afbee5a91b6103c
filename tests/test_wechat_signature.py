"""The JS-SDK `wx.config` signature: published vectors, and a cross-check against wechatpy."""

import secrets

import pytest
from wechatpy.client.api import WeChatJSAPI

from jiandong.integrations.wechat import jsapi_sign_string, jsapi_signature

OFFICIAL_TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
OWN_TICKET = "kgt8ON7yVITDhtdwci0qeZ1hGKtKgt8ON7yVITDhtdwci0qeRTestTicket"
NONCE = "Wm3WZYTPz0wzccnW"


def test_official_example():
    assert jsapi_signature(OFFICIAL_TICKET, NONCE, 1414587457, "http://mp.weixin.qq.com") == (
        "f4d90daf4b3bca3078ab155816175ba34c443a7b")
    # The published signature belongs to the URL without a query string.
    assert jsapi_signature(OFFICIAL_TICKET, NONCE, 1414587457, "http://mp.weixin.qq.com?params=value") == (
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed")


def test_own_vector_drops_the_fragment():
    page = "https://club.example.com/h5/index.html?from=menu&id=42#/orders/7"
    assert jsapi_sign_string(OWN_TICKET, NONCE, 1700000000, page) == (
        "jsapi_ticket=kgt8ON7yVITDhtdwci0qeZ1hGKtKgt8ON7yVITDhtdwci0qeRTestTicket&noncestr=Wm3WZYTPz0wzccnW"
        "&timestamp=1700000000&url=https://club.example.com/h5/index.html?from=menu&id=42")
    assert jsapi_signature(OWN_TICKET, NONCE, 1700000000, page) == "a2dafef1dd43e9a394c661e5fef17f848aef6176"


@pytest.mark.parametrize(
    "url",
    [
        "http://mp.weixin.qq.com",
        "https://club.example.com/h5/index.html?from=menu&id=42",
        "https://club.example.com/h5/比赛.html?q=a b&x=%E4%BD%93",
    ],
)
def test_matches_wechatpy(url):
    for _ in range(5):
        ticket, nonce, timestamp = secrets.token_urlsafe(40), secrets.token_hex(8), secrets.randbelow(2**31)
        expected = WeChatJSAPI().get_jsapi_signature(nonce, ticket, timestamp, url)
        assert jsapi_signature(ticket, nonce, timestamp, url) == expected
