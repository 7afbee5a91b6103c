"""Each setting's declared rule at its edges: a value just inside starts, one just outside stops start-up with a
message naming the setting. The cases are read from the declarations, so a setting added with a rule is covered."""

import dataclasses

import pytest

from jiandong.settings import (
    ENV_PREFIX,
    RULES,
    Settings,
    SettingsError,
    field_problem,
    field_types,
    load_settings,
    setting_help,
)

FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
TYPES = field_types()
# Values a setting's edge case needs from another setting, so that only the rule under test is at its edge.
PARTNERS = {
    "chat_presence_ttl": {"JIANDONG_CHAT_ONLINE_INTERVAL": "0.001"},
    "sms_provider": {"JIANDONG_ALIYUN_ACCESS_KEY_ID": "LTAI", "JIANDONG_ALIYUN_ACCESS_KEY_SECRET": "s",
                     "JIANDONG_SMS_SIGN_NAME": "Club", "JIANDONG_SMS_TEMPLATE_CODE": "SMS_1"},
}


def env(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def raw(value: object) -> str:
    return str(round(value, 6)) if isinstance(value, float) else str(value)


def edges(f: dataclasses.Field) -> tuple[list[object], list[object]]:
    """Values just inside and just outside the rule declared with `f`."""
    rule = f.metadata["rule"]
    step = 1 if TYPES[f.name] is int else 0.01
    inside: list[object] = []
    outside: list[object] = []
    if rule.minimum is not None:
        inside.append(rule.minimum)
        outside.append(rule.minimum - step)
    if rule.maximum is not None:
        inside.append(rule.maximum)
        outside.append(rule.maximum + step)
    if rule.above is not None:
        inside.append(rule.above + step)
        outside.append(rule.above)
    inside.extend(rule.choices)
    if rule.choices:
        outside.append(f"{rule.choices[0]}-or-else")
    inside.extend(f"{scheme}://club.example.com/" for scheme in rule.schemes)
    if rule.schemes:
        outside.append("gopher://club.example.com/")
    return inside, outside


INSIDE = [(name, raw(value)) for name, f in FIELDS.items() for value in edges(f)[0]]
OUTSIDE = [(name, raw(value)) for name, f in FIELDS.items() for value in edges(f)[1]]


def test_the_declarations_give_cases():
    # Ports, counts, timeouts, choices and URLs: far more than a handful, each with both edges.
    assert len({name for name, _ in OUTSIDE}) >= 50
    assert {name for name, _ in INSIDE} == {name for name, _ in OUTSIDE}


@pytest.mark.parametrize(("name", "value"), INSIDE, ids=[f"{env(n)}={v}" for n, v in INSIDE])
def test_a_value_just_inside_its_rule_is_accepted(name, value):
    settings = load_settings({env(name): value, **PARTNERS.get(name, {})})
    assert getattr(settings, name) == TYPES[name](value)


@pytest.mark.parametrize(("name", "value"), OUTSIDE, ids=[f"{env(n)}={v}" for n, v in OUTSIDE])
def test_a_value_just_outside_its_rule_stops_start_up_naming_the_setting(name, value):
    with pytest.raises(SettingsError) as raised:
        load_settings({env(name): value, **PARTNERS.get(name, {})})
    message = str(raised.value)
    assert message.startswith(name), message
    # The setting's own rule speaks, not a rule about a pair of settings.
    parsed = TYPES[name](value)
    assert message == field_problem(FIELDS[name], parsed)


# Each rule about settings that go together: an environment that breaks it and the nearest one that does not.
# A merchant on API v3 with the WeChat Pay public key: every setting v3 needs.
V3_MERCHANT = {
    "JIANDONG_WECHATPAY_MCH_ID": "1900000109", "JIANDONG_WECHATPAY_APIV3_KEY": "a" * 32,
    "JIANDONG_WECHAT_APPID": "wx1", "JIANDONG_WECHAT_SECRET": "s",
    "JIANDONG_WECHATPAY_CERT_PATH": "/etc/jd/apiclient_cert.pem",
    "JIANDONG_WECHATPAY_KEY_PATH": "/etc/jd/apiclient_key.pem",
    "JIANDONG_WECHATPAY_PUBLIC_KEY_PATH": "/etc/jd/pub_key.pem",
    "JIANDONG_WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0114232134912410000000000000",
}
RULE_CASES = {
    "chat_port must differ from port ({s.port}); 0 turns the chat port off": (
        {"JIANDONG_CHAT_PORT": "8080"}, {"JIANDONG_CHAT_PORT": "0"}),
    "chat_presence_ttl must be at least twice chat_online_interval": (
        {"JIANDONG_CHAT_PRESENCE_TTL": "1.9"}, {"JIANDONG_CHAT_PRESENCE_TTL": "2"}),
    "aliyun_live_domain needs aliyun_access_key_id and aliyun_access_key_secret": (
        {"JIANDONG_ALIYUN_LIVE_DOMAIN": "play.example.com", "JIANDONG_ALIYUN_ACCESS_KEY_ID": "LTAI"},
        {"JIANDONG_ALIYUN_LIVE_DOMAIN": "play.example.com", "JIANDONG_ALIYUN_ACCESS_KEY_ID": "LTAI",
         "JIANDONG_ALIYUN_ACCESS_KEY_SECRET": "s"}),
    "sms_provider aliyun needs aliyun_access_key_id, aliyun_access_key_secret, sms_sign_name and sms_template_code": (
        {"JIANDONG_SMS_PROVIDER": "aliyun", "JIANDONG_ALIYUN_ACCESS_KEY_ID": "LTAI",
         "JIANDONG_ALIYUN_ACCESS_KEY_SECRET": "s", "JIANDONG_SMS_SIGN_NAME": "Club"},
        {"JIANDONG_SMS_PROVIDER": "aliyun", "JIANDONG_ALIYUN_ACCESS_KEY_ID": "LTAI",
         "JIANDONG_ALIYUN_ACCESS_KEY_SECRET": "s", "JIANDONG_SMS_SIGN_NAME": "Club",
         "JIANDONG_SMS_TEMPLATE_CODE": "SMS_1"}),
    "wechat_appid is set but wechat_secret is not": (
        {"JIANDONG_WECHAT_APPID": "wx1"}, {"JIANDONG_WECHAT_APPID": "wx1", "JIANDONG_WECHAT_SECRET": "s"}),
    "wechatpay_mch_id needs wechat_appid and wechatpay_api_key (API v2) or wechatpay_apiv3_key (API v3)": (
        {"JIANDONG_WECHATPAY_MCH_ID": "1900000109", "JIANDONG_WECHATPAY_API_KEY": "k"},
        {"JIANDONG_WECHATPAY_MCH_ID": "1900000109", "JIANDONG_WECHATPAY_API_KEY": "k",
         "JIANDONG_WECHAT_APPID": "wx1", "JIANDONG_WECHAT_SECRET": "s"}),
    "wechatpay_apiv3_key needs wechatpay_mch_id, wechatpay_cert_path and wechatpay_key_path (the merchant API "
    "certificate and its key, which sign every v3 request)": (
        {**V3_MERCHANT, "JIANDONG_WECHATPAY_CERT_PATH": "", "JIANDONG_WECHATPAY_KEY_PATH": ""}, V3_MERCHANT),
    "wechatpay_apiv3_key needs wechatpay_public_key_path and wechatpay_public_key_id (the WeChat Pay public key), "
    "or wechatpay_platform_cert_paths (platform certificates), to check what WeChat Pay signs": (
        {**V3_MERCHANT, "JIANDONG_WECHATPAY_PUBLIC_KEY_PATH": "", "JIANDONG_WECHATPAY_PUBLIC_KEY_ID": ""},
        {**V3_MERCHANT, "JIANDONG_WECHATPAY_PUBLIC_KEY_PATH": "", "JIANDONG_WECHATPAY_PUBLIC_KEY_ID": "",
         "JIANDONG_WECHATPAY_PLATFORM_CERT_PATHS": "/etc/jd/wechatpay_5157F09EFDC096DE15EBE81A47057A72.pem"}),
    "wechatpay_public_key_path and wechatpay_public_key_id go together": (
        {**V3_MERCHANT, "JIANDONG_WECHATPAY_PUBLIC_KEY_ID": "", "JIANDONG_WECHATPAY_PLATFORM_CERT_PATHS": "/etc/c.pem"},
        V3_MERCHANT),
    "wechatpay_cert_path and wechatpay_key_path go together (both PEM files, or neither)": (
        {"JIANDONG_WECHATPAY_KEY_PATH": "/etc/jd/apiclient_key.pem"},
        {"JIANDONG_WECHATPAY_KEY_PATH": "/etc/jd/apiclient_key.pem",
         "JIANDONG_WECHATPAY_CERT_PATH": "/etc/jd/apiclient_cert.pem"}),
    "aliyun_live_push_domain needs aliyun_live_push_key (the push domain's auth_key key)": (
        {"JIANDONG_ALIYUN_LIVE_PUSH_DOMAIN": "push.example.com", "JIANDONG_ALIYUN_LIVE_PLAY_DOMAIN": "p.example.com"},
        {"JIANDONG_ALIYUN_LIVE_PUSH_DOMAIN": "push.example.com", "JIANDONG_ALIYUN_LIVE_PLAY_DOMAIN": "p.example.com",
         "JIANDONG_ALIYUN_LIVE_PUSH_KEY": "k"}),
    "aliyun_live_push_domain needs aliyun_live_play_domain (or aliyun_live_domain)": (
        {"JIANDONG_ALIYUN_LIVE_PUSH_DOMAIN": "push.example.com", "JIANDONG_ALIYUN_LIVE_PUSH_KEY": "k"},
        {"JIANDONG_ALIYUN_LIVE_PUSH_DOMAIN": "push.example.com", "JIANDONG_ALIYUN_LIVE_PUSH_KEY": "k",
         "JIANDONG_ALIYUN_LIVE_PLAY_DOMAIN": "p.example.com"}),
}


def test_every_rule_about_a_pair_of_settings_has_a_case():
    assert list(RULE_CASES) == [message for _, message in RULES]


@pytest.mark.parametrize(("message", "broken", "fixed"), [(m, b, f) for m, (b, f) in RULE_CASES.items()],
                         ids=[m.split(" ")[0] + f"-{i}" for i, m in enumerate(RULE_CASES)])
def test_a_broken_rule_about_a_pair_of_settings_stops_start_up(message, broken, fixed):
    with pytest.raises(SettingsError) as raised:
        load_settings(broken)
    assert str(raised.value) == message.format(s=Settings())
    load_settings(fixed)


def test_a_flag_s_help_is_its_setting_s_declared_help():
    assert setting_help("port") == "HTTP port (API, docs, /ws) (JIANDONG_PORT)"
    assert setting_help("chat_port") == f"{FIELDS['chat_port'].metadata['help']} (JIANDONG_CHAT_PORT)"
