"""Aliyun Live signatures against wechat-aliyun.md §5.2 (callback) and §5.3 (type-A auth_key) vectors."""

import hashlib

import pytest

from jiandong.integrations.aliyun_live import (
    auth_key_hash,
    callback_signature,
    callback_signature_valid,
    sign_url,
    stream_name_of,
)

TS = 1704087000
PUSH_KEY = "PushKey0123456789"
PLAY_KEY = "PlayKey0123456789"


def test_callback_signature_vector():
    assert callback_signature("push.club.example.com", "1704085200", "CallbackKey123") == (
        "356d41494f13c79b05f0b35f114ec841"
    )


@pytest.mark.parametrize(
    ("domain", "stamp", "signature", "key", "valid"),
    [
        ("push.club.example.com", "1704085200", "356d41494f13c79b05f0b35f114ec841", "CallbackKey123", True),
        # The hex case is not specified by Aliyun: upper case is taken too.
        ("push.club.example.com", "1704085200", "356D41494F13C79B05F0B35F114EC841", "CallbackKey123", True),
        ("push.club.example.com", "1704085201", "356d41494f13c79b05f0b35f114ec841", "CallbackKey123", False),
        ("other.example.com", "1704085200", "356d41494f13c79b05f0b35f114ec841", "CallbackKey123", False),
        ("push.club.example.com", "1704085200", "356d41494f13c79b05f0b35f114ec841", "OtherKey", False),
        ("push.club.example.com", "1704085200", "", "CallbackKey123", False),
        ("push.club.example.com", "1704085200", "签名", "CallbackKey123", False),
        # No key configured: nothing is valid, not even the MD5 of an empty key.
        ("push.club.example.com", "1704085200", hashlib.md5(b"push.club.example.com|1704085200|").hexdigest(), "",
         False),
    ],
)
def test_callback_signature_check(domain, stamp, signature, key, valid):
    assert callback_signature_valid(domain, stamp, signature, key) is valid


def test_official_auth_key_example():
    assert auth_key_hash("/video/standard", 1622194197, "aliyunliveexp1234") == "5552ff52b5e4e20387c6dc18afce206b"


def test_push_url_vector():
    url = sign_url("rtmp://push.club.example.com/club/match_2024_001", PUSH_KEY, TS)
    assert url == (
        "rtmp://push.club.example.com/club/match_2024_001?auth_key=1704087000-0-0-f73e7d4fd3f51bf4ea1f89eb51371328"
    )


@pytest.mark.parametrize(
    ("url", "digest"),
    [
        ("rtmp://live.club.example.com/club/match_2024_001", "2093aa8fa52ce952f6a6bd91e6c1ab96"),
        ("https://live.club.example.com/club/match_2024_001.flv", "44cd6cd34350862235143ca46b5029da"),
        ("https://live.club.example.com/club/match_2024_001.m3u8", "5b9bc9bfe42b05af54085ba86399c51b"),
    ],
)
def test_play_url_vectors(url, digest):
    assert sign_url(url, PLAY_KEY, TS) == f"{url}?auth_key={TS}-0-0-{digest}"


def test_play_url_with_random_part_and_existing_query():
    rand = "477b3bbc253f467b8def6711128c7bec"
    url = "https://live.club.example.com/club/match_2024_001.flv"
    assert auth_key_hash("/club/match_2024_001.flv", TS, PLAY_KEY, rand) == "58254b0a62facfb67f660e2612bcd696"
    # The query is not part of the signed URI; auth_key is appended to it.
    signed = sign_url(url + "?token=x", PLAY_KEY, TS, rand)
    assert signed == f"{url}?token=x&auth_key={TS}-{rand}-0-58254b0a62facfb67f660e2612bcd696"


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("match_1", "match_1"),
        ("club/match_1", "match_1"),
        ("/club/match_1", "match_1"),
        ("rtmp://live.club.example.com/club/match_1", "match_1"),
        ("https://live.club.example.com/club/match_1?auth_key=1-0-0-x", "match_1"),
    ],
)
def test_stream_name_of(raw, name):
    assert stream_name_of(raw) == name


def test_console_live_urls_match_the_reference_vectors():
    # wechat-aliyun.md §5.3: push key PushKey0123456789, play key PlayKey0123456789, AppName club, stream
    # match_2024_001, timestamp 1704087000 (= now + aliyun_live_url_ttl).
    from jiandong.integrations.aliyun_live import live_urls, with_push_token
    from jiandong.settings import Settings

    settings = Settings(aliyun_live_push_domain="push.club.example.com", aliyun_live_push_key="PushKey0123456789",
                        aliyun_live_play_domain="live.club.example.com", aliyun_live_play_key="PlayKey0123456789",
                        aliyun_live_url_ttl=600)
    urls = live_urls(settings, "club", "match_2024_001", 1704087000 - 600)
    assert urls.push == ("rtmp://push.club.example.com/club/match_2024_001"
                         "?auth_key=1704087000-0-0-f73e7d4fd3f51bf4ea1f89eb51371328")
    assert urls.rtmp == ("rtmp://live.club.example.com/club/match_2024_001"
                         "?auth_key=1704087000-0-0-2093aa8fa52ce952f6a6bd91e6c1ab96")
    assert urls.flv == ("https://live.club.example.com/club/match_2024_001.flv"
                        "?auth_key=1704087000-0-0-44cd6cd34350862235143ca46b5029da")
    assert urls.m3u8 == ("https://live.club.example.com/club/match_2024_001.m3u8"
                         "?auth_key=1704087000-0-0-5b9bc9bfe42b05af54085ba86399c51b")
    assert with_push_token("rtmp://h/live/s?token=old&x=1", "new") == "rtmp://h/live/s?x=1&token=new"
