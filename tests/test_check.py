"""python server.py check: one finding a line, exit status 1 on a problem."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from jiandong.ops.check import PROBLEM, pem_files
from jiandong.settings import Settings
from tests.fakes import wechatpay_v3 as fake_v3
from tests.fakes.wechatpay_v3 import MIXED, PUBLIC_KEY, FakeWeChatPayV3
from tests.helpers.servers import ROOT, free_port


def check(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIANDONG_")}
    return subprocess.run([sys.executable, "server.py", "check"], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


PRODUCTION = {
    "JIANDONG_WECHAT_APPID": "wx0123456789abcdef", "JIANDONG_WECHAT_SECRET": "appsecret-of-the-club",
    "JIANDONG_WECHATPAY_MCH_ID": "1900000109", "JIANDONG_WECHATPAY_API_KEY": "merchant-key-of-the-club",
    "JIANDONG_WECHATPAY_NOTIFY_URL": "https://club.example.com/api/v1/pay/notify",
    "JIANDONG_SMS_PROVIDER": "aliyun", "JIANDONG_ALIYUN_ACCESS_KEY_ID": "LTAI5tKeyId",
    "JIANDONG_ALIYUN_ACCESS_KEY_SECRET": "aliyun-secret", "JIANDONG_SMS_SIGN_NAME": "建东体育",
    "JIANDONG_SMS_TEMPLATE_CODE": "SMS_123456789", "JIANDONG_PUBLIC_URL": "https://club.example.com",
    "JIANDONG_TRUST_PROXY": "1",
}


def test_a_good_configuration(database_url, redis_url):
    result = check(JIANDONG_DATABASE_URL=database_url, JIANDONG_REDIS_URL=redis_url, **PRODUCTION)
    print(result.stdout)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines.pop(0) == "ok: WeChat Pay API v2, merchant 1900000109 (JIANDONG_WECHATPAY_APIV3_KEY is not set)"
    assert lines[0].startswith("ok: PostgreSQL ") and lines[0].endswith(f"answers at {database_url}")
    # No notice has a template yet (a fresh club): said, but not a problem.
    assert lines[1].startswith("warning: notices with neither a WeChat template nor an SMS template: 报名成功, 取消")
    assert lines[2].startswith("ok: Redis ") and lines[2].endswith(f"answers at {redis_url}")
    # The test Redis keeps nothing on disk: said, but not a problem.
    assert all(line.startswith("warning: Redis keeps nothing on disk") for line in lines[3:])
    for secret in ("appsecret-of-the-club", "merchant-key-of-the-club", "aliyun-secret"):
        assert secret not in result.stdout


def test_notices_that_reach_nobody_are_named(database_url, redis_url, sql):
    sql("INSERT INTO notice_kinds (kind, template_id, sms_template_code, enabled) VALUES"
        " ('signup_confirmed', 'TPL', '', true), ('signup_cancelled', '', 'SMS_1', true),"
        " ('payment_received', '', '', false)")
    try:
        result = check(JIANDONG_DATABASE_URL=database_url, JIANDONG_REDIS_URL=redis_url, **PRODUCTION)
    finally:
        sql("DELETE FROM notice_kinds")
    (line,) = [line for line in result.stdout.splitlines() if "notices with neither" in line]
    assert line.startswith("warning: notices with neither a WeChat template nor an SMS template: 退款成功, 比赛提醒,")
    assert "报名成功" not in line and "取消报名" not in line and "支付成功" not in line
    # In development (no AppID) notices are only logged: nothing to warn about there.
    dev = {k: v for k, v in PRODUCTION.items() if k not in ("JIANDONG_WECHAT_APPID", "JIANDONG_WECHAT_SECRET")}
    assert "notices with neither" not in check(JIANDONG_DATABASE_URL=database_url, JIANDONG_REDIS_URL=redis_url,
                                               **dev).stdout


def test_a_broken_configuration(redis_url):
    dead = free_port()
    result = check(JIANDONG_DATABASE_URL=f"postgresql://club:pw@127.0.0.1:{dead}/club",
                   JIANDONG_REDIS_URL=f"redis://:pw@127.0.0.1:{dead}/0", JIANDONG_PUBLIC_URL="http://club.example.com")
    print(result.stdout)
    assert result.returncode == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "warning: development logins are on (no JIANDONG_WECHAT_APPID): any code logs in as a user",
        "warning: dev payments are on (no JIANDONG_WECHATPAY_MCH_ID): orders are paid without money",
        "warning: SMS codes go to the log, not to phones (JIANDONG_SMS_PROVIDER=console)",
        "warning: JIANDONG_PUBLIC_URL is not https (http://club.example.com): WeChat wants https pages",
        "warning: JIANDONG_TRUST_PROXY is off: behind a proxy every client has the proxy's address "
        "(SMS limits, WeChat Pay's client IP)",
    ]
    assert lines[5].startswith(f"problem: PostgreSQL at postgresql://club:***@127.0.0.1:{dead}/club: ")
    assert lines[6].startswith(f"problem: Redis at redis://:***@127.0.0.1:{dead}/0: ")
    assert len(lines) == 7 and "pw@" not in result.stdout


def test_a_bad_setting_is_a_problem_too():
    result = check(JIANDONG_PROT="8080")
    # A finding like the others: one line, and status 1.
    assert result.returncode == 1 and result.stderr == ""
    assert result.stdout == "problem: unknown setting JIANDONG_PROT; did you mean JIANDONG_PORT?\n"


@dataclasses.dataclass(frozen=True)
class WithCertificate(Settings):
    """Settings with a certificate and its key, as a merchant certificate would be declared."""

    tls_cert_file: str = dataclasses.field(default="", metadata={"pem": "certificate"})
    tls_key_file: str = dataclasses.field(default="", metadata={"pem": "tls_cert_file"})


def test_certificate_and_key_files_must_exist_and_parse(tmp_path):
    cert, key, other_key = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=club",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    subprocess.run(["openssl", "genrsa", "-out", str(other_key), "2048"], check=True, capture_output=True)
    assert list(pem_files(WithCertificate(tls_cert_file=str(cert), tls_key_file=str(key)))) == []
    assert list(pem_files(WithCertificate())) == []
    missing = list(pem_files(WithCertificate(tls_cert_file=str(tmp_path / "none.pem"))))
    assert [str(f) for f in missing] == [f"problem: JIANDONG_TLS_CERT_FILE: no file {tmp_path / 'none.pem'}"]
    garbled = list(pem_files(WithCertificate(tls_cert_file=str(key))))
    assert [f.level for f in garbled] == [PROBLEM] and "does not parse as a PEM certificate" in garbled[0].text
    mismatched = list(pem_files(WithCertificate(tls_cert_file=str(cert), tls_key_file=str(other_key))))
    assert [f.level for f in mismatched] == [PROBLEM] and "JIANDONG_TLS_KEY_FILE" in mismatched[0].text
    # The merchant's certificate for refunds is checked the same way.
    merchant = Settings(wechatpay_cert_path=str(cert), wechatpay_key_path=str(other_key))
    assert [f.text.split(":")[0] for f in pem_files(merchant)] == ["JIANDONG_WECHATPAY_KEY_PATH"]
    assert list(pem_files(Settings(wechatpay_cert_path=str(cert), wechatpay_key_path=str(key)))) == []
    # A key with a pass phrase is a problem said at once, not a prompt on the terminal that check waits at.
    locked = tmp_path / "locked.pem"
    subprocess.run(["openssl", "rsa", "-in", str(key), "-aes256", "-passout", "pass:secret", "-out", str(locked)],
                   check=True, capture_output=True)
    [found] = pem_files(Settings(wechatpay_cert_path=str(cert), wechatpay_key_path=str(locked)))
    assert found.level == PROBLEM and "the key is encrypted; the server needs it without a pass phrase" in found.text


def test_a_wechat_appid_without_a_public_url_is_a_problem_and_the_server_refuses_to_start(database_url, redis_url):
    """Outside development mode every URL handed out comes from JIANDONG_PUBLIC_URL, never from a Host header."""
    env = {k: v for k, v in PRODUCTION.items() if k != "JIANDONG_PUBLIC_URL"}
    result = check(JIANDONG_DATABASE_URL=database_url, JIANDONG_REDIS_URL=redis_url, **env)
    expected = ("JIANDONG_PUBLIC_URL is required when JIANDONG_WECHAT_APPID is set (outside development mode): "
                "the URLs the server hands out are built from it, never from a request's Host header")
    assert result.returncode == 1 and f"{PROBLEM}: {expected}" in result.stdout.splitlines()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIANDONG_")}
    serve = subprocess.run([sys.executable, "server.py", "--port", str(free_port()), "--chat-port", "0"], cwd=ROOT,
                           env={**clean, "JIANDONG_DATABASE_URL": database_url, "JIANDONG_REDIS_URL": redis_url, **env},
                           capture_output=True, text=True, timeout=60)
    assert serve.returncode == 2 and serve.stderr == f"jiandong: {expected}\n" and serve.stdout == ""
    # Development mode (no AppID) needs none.
    assert "JIANDONG_PUBLIC_URL is required" not in check(JIANDONG_DATABASE_URL=database_url,
                                                          JIANDONG_REDIS_URL=redis_url).stdout


def v3_env(fake: FakeWeChatPayV3, database_url: str, redis_url: str) -> dict[str, str]:
    v2_only = ("JIANDONG_WECHATPAY_API_KEY",)
    env = {k: v for k, v in PRODUCTION.items() if k not in v2_only}
    for name, value in fake_v3.settings_for(fake).items():
        env[f"JIANDONG_{name.upper()}"] = ",".join(value) if isinstance(value, tuple) else str(value)
    return {**env, "JIANDONG_DATABASE_URL": database_url, "JIANDONG_REDIS_URL": redis_url}


@pytest.mark.parametrize("mode", [PUBLIC_KEY, MIXED])
def test_check_names_wechat_pay_v3_and_the_keys_it_loaded(database_url, redis_url, tmp_path, mode):
    fake = FakeWeChatPayV3(tmp_path / "v3", mode=mode)
    result = check(**v3_env(fake, database_url, redis_url))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "ok: WeChat Pay API v3, merchant 1900000109 (JIANDONG_WECHATPAY_APIV3_KEY is set)"
    keys = sorted([fake.public_key_id] + ([fake.platform_serial] if mode == MIXED else []))
    assert (f"ok: WeChat Pay API v3: requests signed with the merchant certificate {fake.merchant_serial}; "
            f"WeChat Pay's signatures checked with {', '.join(keys)}") in lines
    assert any("switch-over" in line for line in lines) == (mode == MIXED)
    assert fake.api_v3_key not in result.stdout


def test_check_says_a_v2_key_beside_v3_is_not_used(database_url, redis_url, tmp_path):
    fake = FakeWeChatPayV3(tmp_path / "v3")
    result = check(**v3_env(fake, database_url, redis_url), JIANDONG_WECHATPAY_API_KEY="merchant-key-of-the-club")
    assert result.returncode == 0, result.stdout
    assert "warning: JIANDONG_WECHATPAY_API_KEY (API v2) is set too and is not used: API v3 is" in result.stdout


def test_check_refuses_a_wechat_pay_public_key_that_does_not_load(database_url, redis_url, tmp_path):
    fake = FakeWeChatPayV3(tmp_path / "v3")
    fake.public_key_path.write_text("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")
    result = check(**v3_env(fake, database_url, redis_url))
    assert result.returncode == 1
    assert [line for line in result.stdout.splitlines() if "v3 keys" in line] == [
        f"problem: WeChat Pay API v3 keys do not load: JIANDONG_WECHATPAY_PUBLIC_KEY_PATH: {fake.public_key_path} "
        "is not an RSA public key (PEM)"]
