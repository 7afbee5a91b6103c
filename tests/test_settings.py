import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jiandong.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_from_an_empty_environment():
    settings = load_settings({})
    assert settings == Settings()
    assert settings.port == 8080 and settings.host == "0.0.0.0"
    assert settings.database_url == "" and settings.redis_url == ""
    assert settings.timezone == "Asia/Shanghai" and settings.token_ttl == 7200
    assert settings.cors_origins == () and settings.trust_proxy is False
    assert settings.dev_wechat and settings.sms_provider == "console"


def test_environment_values_are_parsed():
    settings = load_settings(
        {
            "JIANDONG_PORT": "9000",
            "JIANDONG_TRUST_PROXY": "yes",
            "JIANDONG_HTTP_TIMEOUT": "2.5",
            "JIANDONG_CORS_ORIGINS": "https://a.example, https://b.example,",
            "JIANDONG_DATABASE_URL": "postgresql://u:p@db:5432/club",
            "JIANDONG_REDIS_URL": "redis://cache:6379/1",
            "JIANDONG_LOG_LEVEL": "debug",
            "PATH": "/usr/bin",
        }
    )
    assert settings.port == 9000
    assert settings.trust_proxy is True
    assert settings.http_timeout == 2.5
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.database_url == "postgresql://u:p@db:5432/club"
    assert settings.log_level == "debug"


def test_unknown_setting_is_named():
    with pytest.raises(SettingsError, match="unknown setting JIANDONG_FOO") as raised:
        load_settings({"JIANDONG_FOO": "1"})
    # Not the 70 valid names: where they are listed.
    assert "JIANDONG_PORT" not in str(raised.value) and "configuration table" in str(raised.value)


@pytest.mark.parametrize(("typo", "meant"), [("JIANDONG_PROT", "JIANDONG_PORT"),
                                              ("JIANDONG_WECHAT_APP_ID", "JIANDONG_WECHAT_APPID"),
                                              ("JIANDONG_REDIS_PREFFIX", "JIANDONG_REDIS_PREFIX")])
def test_a_misspelt_setting_gets_the_closest_name(typo, meant):
    with pytest.raises(SettingsError) as raised:
        load_settings({typo: "1"})
    assert str(raised.value) == f"unknown setting {typo}; did you mean {meant}?"


def test_describe_names_where_a_value_nobody_set_came_from():
    text = Settings(database_url="postgresql://postgres:@/jiandong?host=/var/pgdata", port=9000).describe(
        {"database_url": "embedded", "redis_url": "embedded"})
    assert text.splitlines()[1:] == [
        "  JIANDONG_DATABASE_URL = postgresql://postgres:@/jiandong?host=/var/pgdata  (embedded)",
        "  JIANDONG_PORT = 9000",
    ]


def test_describe_lists_what_differs_from_the_defaults_one_per_line_masked():
    assert Settings().describe() == "settings: all at their defaults"
    text = Settings(port=9000, wechat_appid="wx1", wechat_secret="s3cret", cors_origins=("https://a", "https://b"),
                    redis_url="redis://:pw@cache:6379/0", trust_proxy=True).describe()
    assert text.splitlines() == [
        "settings (6 not at their default; secrets masked):",
        "  JIANDONG_REDIS_URL = redis://:***@cache:6379/0",
        "  JIANDONG_PORT = 9000",
        "  JIANDONG_TRUST_PROXY = 1",
        "  JIANDONG_CORS_ORIGINS = https://a,https://b",
        "  JIANDONG_WECHAT_APPID = wx1",
        "  JIANDONG_WECHAT_SECRET = ***",
    ]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JIANDONG_PORT", "eighty", "JIANDONG_PORT: 'eighty' is not a valid int"),
        ("JIANDONG_PORT", "70000", "port must be a TCP port"),
        ("JIANDONG_TOKEN_TTL", "0", "token_ttl must be at least 1"),
        ("JIANDONG_HTTP_TIMEOUT", "soon", "JIANDONG_HTTP_TIMEOUT: 'soon' is not a valid float"),
        ("JIANDONG_TRUST_PROXY", "maybe", "JIANDONG_TRUST_PROXY: 'maybe' is not a valid bool"),
        ("JIANDONG_TIMEZONE", "Mars/Olympus_Mons", "timezone 'Mars/Olympus_Mons' is not a known time zone"),
        ("JIANDONG_LOG_LEVEL", "LOUD", "log_level 'LOUD' is not DEBUG"),
        ("JIANDONG_DATABASE_URL", "mysql://root@db/club", "database_url must start with postgresql://"),
        ("JIANDONG_REDIS_URL", "http://cache:6379", "redis_url must start with redis://"),
        ("JIANDONG_WECHAT_API_URL", "ftp://api.weixin.qq.com", "wechat_api_url must be an http(s) URL"),
        ("JIANDONG_PUBLIC_URL", "club.example.com", "public_url must be an http(s) URL"),
        ("JIANDONG_PUBLIC_URL", "http://a b", "public_url must be an http(s) URL"),
        # Copied into JSON answers and pages: a quote or a backslash would break them.
        ("JIANDONG_PUBLIC_URL", 'https://club.example.com/a"b', "public_url must be an http(s) URL"),
        ("JIANDONG_PUBLIC_URL", "https://club.example.com/a\\b", "public_url must be an http(s) URL"),
        ("JIANDONG_PUBLIC_URL", "https://club.example.com/<b>", "public_url must be an http(s) URL"),
        ("JIANDONG_WECHAT_API_URL", "https://api.weixin.qq.com/`", "wechat_api_url must be an http(s) URL"),
        ("JIANDONG_PUBLIC_URL", "http://127.0.0.1:8080?x=1", "public_url must have no query or fragment"),
        ("JIANDONG_SMS_PROVIDER", "pigeon", "sms_provider must be console or aliyun"),
        ("JIANDONG_CHAT_BATCH_WINDOW", "-0.1", "chat_batch_window must be between 0 and 1 second"),
        ("JIANDONG_CHAT_BATCH_WINDOW", "5", "chat_batch_window must be between 0 and 1 second"),
        ("JIANDONG_ORDER_EXPIRE_MINUTES", "9", "order_expire_minutes must be between 10 and 110"),
        ("JIANDONG_CHAT_EMOJI_PATH", "h5/images/emoji/", "chat_emoji_path must be a URL path"),
        ("JIANDONG_CHAT_EMOJI_PATH", "/h5/images/emoji", "chat_emoji_path must be a URL path"),
        ("JIANDONG_CHAT_EMOJI_PATH", '/e"onerror="x/', "chat_emoji_path must be a URL path"),
        ("JIANDONG_CHAT_EMOJI_PATH", "/h5/../api/", "chat_emoji_path must be a URL path"),
        ("JIANDONG_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local", "trusted_proxies: 'proxy.local' is not an IP"),
        ("JIANDONG_TRUSTED_PROXIES", "10.0.0.1/8", "trusted_proxies: '10.0.0.1/8' is not an IP"),
        ("JIANDONG_BODY_TIMEOUT", "0", "body_timeout must be positive"),
        ("JIANDONG_WECHATPAY_CERT_PATH", "/etc/jd/apiclient_cert.pem", "wechatpay_cert_path and wechatpay_key_path go"),
        ("JIANDONG_WECHATPAY_KEY_PATH", "/etc/jd/apiclient_key.pem", "wechatpay_cert_path and wechatpay_key_path go"),
        ("JIANDONG_REFUND_MEMBERSHIP_RULE", "never", "refund_membership_rule must be one of full-revokes, prorated"),
        ("JIANDONG_WECHATPAY_REFUND_NOTIFY_URL", "https://club.example.com/n?x=1", "must have no query string"),
        ("JIANDONG_WECHATPAY_REFUND_NOTIFY_URL", "club.example.com/n", "wechatpay_refund_notify_url must be an http"),
    ],
)
def test_malformed_values_stop(name, value, message):
    with pytest.raises(SettingsError) as info:
        load_settings({name: value})
    assert message in str(info.value)


def test_incomplete_accounts_stop():
    with pytest.raises(SettingsError, match="wechat_secret is not"):
        load_settings({"JIANDONG_WECHAT_APPID": "wx123"})
    with pytest.raises(SettingsError, match="sms_provider aliyun needs"):
        load_settings({"JIANDONG_SMS_PROVIDER": "aliyun"})


def test_cli_overrides_win():
    env = {"JIANDONG_PORT": "9000", "JIANDONG_HOST": "127.0.0.1", "JIANDONG_LOG_LEVEL": "WARNING"}
    settings = load_settings(env, port=9100, host=None, log_level="ERROR")
    assert settings.port == 9100
    assert settings.host == "127.0.0.1"  # None means: flag not given
    assert settings.log_level == "ERROR"
    assert load_settings(env, port="9200").port == 9200
    with pytest.raises(SettingsError, match="--port: 'x' is not a valid int"):
        load_settings(env, port="x")
    with pytest.raises(SettingsError, match="unknown setting colour"):
        load_settings({}, colour="red")


def test_public_masks_secrets():
    settings = load_settings(
        {
            "JIANDONG_DATABASE_URL": "postgresql://club:s3cret-db@db:5432/club",
            "JIANDONG_REDIS_URL": "redis://:s3cret-redis@cache:6379/0",
            "JIANDONG_WECHAT_APPID": "wx0123",
            "JIANDONG_WECHAT_SECRET": "s3cret-wechat",
            "JIANDONG_WECHATPAY_MCH_ID": "1900000109",
            "JIANDONG_WECHATPAY_API_KEY": "s3cret-pay",
            "JIANDONG_ALIYUN_ACCESS_KEY_ID": "LTAI-id",
            "JIANDONG_ALIYUN_ACCESS_KEY_SECRET": "s3cret-aliyun",
        }
    )
    shown = settings.public()
    assert "s3cret" not in repr(shown)
    assert shown["wechat_secret"] == shown["wechatpay_api_key"] == shown["aliyun_access_key_secret"] == "***"
    assert shown["database_url"] == "postgresql://club:***@db:5432/club"
    assert shown["redis_url"] == "redis://:***@cache:6379/0"
    assert shown["wechat_appid"] == "wx0123" and shown["aliyun_access_key_id"] == "LTAI-id"
    assert set(shown) == {f.name for f in dataclasses.fields(Settings)}
    # Empty secrets stay empty, so the log shows what is missing.
    assert Settings().public()["wechat_secret"] == ""


def run_server(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIANDONG_")}
    return subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_rejects_a_bad_port_flag():
    result = run_server("--port", "notanumber")
    assert result.returncode == 2
    assert "--port: invalid int value: 'notanumber'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_rejects_a_bad_environment_value():
    result = run_server("migrate", JIANDONG_PORT="x")
    assert result.returncode == 2
    assert "jiandong: bad setting: JIANDONG_PORT: 'x' is not a valid int" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_server("migrate", JIANDONG_COLOUR="blue")
    assert result.returncode == 2
    assert "unknown setting JIANDONG_COLOUR" in result.stderr
