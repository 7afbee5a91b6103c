"""Settings: one frozen dataclass read from JIANDONG_* environment variables and CLI flags."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import logging
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .lib import eventloop, logformat, logqueue, logthrottle

ENV_PREFIX = "JIANDONG_"
TEST_PREFIX = "JIANDONG_TEST_"
# Written as is into every kept emoji tag, so it must be a plain path: no markup, no dot segment.
EMOJI_PATH_RE = re.compile(r"/(?:(?!\.\.?/)[A-Za-z0-9._~-]+/)*")  # segments, none of them . or ..
EMOJI_PATH_MESSAGE = "{name} must be a URL path that starts and ends with / (letters, digits, -._~)"
REFUND_MEMBERSHIP_RULES = ("full-revokes", "prorated", "keep")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
HTTP = ("http", "https")
TCP_PORT = "{name} must be a TCP port, got {value}"


class SettingsError(ValueError):
    """A setting is unknown or malformed; start-up stops with this message."""


@dataclass(frozen=True)
class Rule:
    """What one setting's value must be, declared beside it; field_problem() words how a value breaks it."""

    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    above: float | None = None  # exclusive: above=0 is "positive"
    choices: tuple[str, ...] = ()
    fold: typing.Callable[[str], str] | None = None  # applied to the value before it is looked up in choices
    pattern: re.Pattern[str] | None = None  # the whole value must match
    schemes: tuple[str, ...] = ()  # a URL, when set, with one of these schemes; HTTP ones also need a host
    check: typing.Callable[[str, typing.Any], str | None] | None = None  # the rare rule of its own: (name, value)
    message: str | None = None  # replaces the generic message: {name}, {value} and {choices} are filled in
    note: str = ""  # said after "between <minimum> and <maximum>"


def spec(default: typing.Any, help: str, *, secret: bool = False, pem: str = "", **rule: typing.Any) -> typing.Any:
    """A setting: its default, its help (the README's configuration table), and the Rule its value obeys."""
    metadata: dict[str, typing.Any] = {"help": help, "rule": Rule(**rule)}
    if secret:
        metadata["secret"] = True
    if pem:
        # ops/check.py checks the file: "certificate", or the setting naming the certificate of a private key.
        metadata["pem"] = pem
    return field(default=default, metadata=metadata)


def ip_networks(name: str, value: tuple[str, ...]) -> str | None:
    for network in value:
        try:
            ipaddress.ip_network(network)
        except ValueError:
            return f"{name}: {network!r} is not an IP address or CIDR network"
    return None


def known_time_zone(name: str, value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name} {value!r} is not a known time zone"
    return None


def uvloop_if_chosen(name: str, value: str) -> str | None:
    if value == "uvloop" and not eventloop.uvloop_installed():
        return f"{name} is uvloop, which is not installed: pip install '.[speed]'"
    return None


def no_query_or_fragment(name: str, value: str) -> str | None:
    # Links are built by appending paths to it.
    url = urlsplit(value)
    return f"{name} must have no query or fragment, got {value!r}" if url.query or url.fragment else None


def no_query(name: str, value: str) -> str | None:
    # WeChat Pay wants the notify_url without a query string (wechatpay-refund.md §1.3, §3).
    return f"{name} must have no query string" if urlsplit(value).query else None


@dataclass(frozen=True)
class Settings:
    # Servers. Empty URLs mean: start the embedded PostgreSQL / Redis under var_dir.
    database_url: str = spec(
        "",
        "PostgreSQL URL; empty = embedded server",
        schemes=("postgres", "postgresql"), message="{name} must start with postgresql://",
    )
    redis_url: str = spec(
        "",
        "Redis URL; empty = embedded server",
        schemes=("redis", "rediss", "unix"), message="{name} must start with redis://, rediss:// or unix://",
    )
    redis_prefix: str = spec("jd:", "prefix of every Redis key and channel")
    db_pool_size: int = spec(10, "PostgreSQL connections per process", minimum=1)
    db_timeout: float = spec(
        3.0,
        "seconds a PostgreSQL connect, statement or wait for a free connection may take (then 503)",
        above=0,
    )
    redis_timeout: float = spec(2.0, "seconds a Redis connect or command may take (then 503)", above=0)
    host: str = spec("0.0.0.0", "HTTP listen address")
    port: int = spec(8080, "HTTP port (API, docs, /ws)", minimum=1, maximum=65535, message=TCP_PORT)
    chat_port: int = spec(19833, "dedicated chat websocket port; 0 = off", minimum=0, maximum=65535, message=TCP_PORT)
    workers: int = spec(1, "server processes accepting on the same ports; 1 = one process", minimum=1)
    var_dir: str = spec("var", "data of the embedded servers")
    media_dir: str = spec("", "uploaded files; empty = <var_dir>/media")
    public_url: str = spec(
        "",
        "public base URL (https://club.example.com) of every URL handed out; required with a WeChat AppID; empty "
        "(development mode only) = from the request",
        schemes=HTTP, check=no_query_or_fragment,
    )
    trust_proxy: bool = spec(False, "take the client IP from X-Forwarded-For (behind a proxy)")
    trusted_proxies: tuple[str, ...] = spec(
        ("127.0.0.0/8", "::1/128"),
        "comma-separated addresses or CIDRs of the proxies in front (with trust_proxy): the client IP is the "
        "rightmost X-Forwarded-For address that is not one of them",
        check=ip_networks,
    )
    max_connections: int = spec(
        10000,
        "open HTTP and websocket connections per process; past it the longest-idle one is closed, or the new one when "
        "none is idle",
        minimum=16,
    )
    idle_timeout: float = spec(
        15.0,
        "seconds a connection may wait for a request's headers, first or next, before it is closed",
        above=0,
    )
    body_timeout: float = spec(30.0, "seconds a request's body may take to arrive (longer: 408)", above=0)
    timezone: str = spec("Asia/Shanghai", "the club's time zone", check=known_time_zone)
    log_level: str = spec(
        "INFO",
        "DEBUG, INFO, WARNING or ERROR",
        choices=LOG_LEVELS, fold=str.upper, message="{name} {value!r} is not {choices}",
    )
    log_format: str = spec(
        "text",
        "text, or json: one JSON object per line (time, level, logger, message, request id, route, status, duration, "
        "user id)",
        choices=("text", "json"),
    )
    access_log: bool = spec(True, "a log line per request (logger jiandong.access)")
    event_loop: str = spec(
        "auto",
        "auto: uvloop when it is installed (pip install '.[speed]'), else asyncio's; or uvloop, or asyncio",
        choices=eventloop.CHOICES, check=uvloop_if_chosen,
    )
    metrics_allow: tuple[str, ...] = spec(
        ("127.0.0.0/8", "::1/128"),
        "comma-separated addresses or CIDRs allowed to read /metrics; empty = none (token only)",
        check=ip_networks,
    )
    metrics_token: str = spec("", "bearer token that opens /metrics from anywhere; empty = none", secret=True)
    metrics_dir: str = spec(
        "",
        "the workers' metric files (with --workers), emptied at start; empty = <var_dir>/metrics/<port>",
    )
    token_ttl: int = spec(7200, "seconds a login token lives", minimum=1)
    cors_origins: tuple[str, ...] = spec((), "comma-separated origins allowed by CORS (* = any)")
    h5_dir: str = spec("", "directory of a built H5 front end, served at /h5/")
    http_timeout: float = spec(10.0, "seconds for a call to an outside service", above=0)
    counter_flush_interval: float = spec(
        5.0,
        "seconds between moves of pending view counts from Redis to PostgreSQL",
        above=0,
    )
    content_cache_ttl: float = spec(60.0, "seconds hot content stays cached in a process (changes invalidate at once)")
    # Live-room chat (websocket).
    chat_frame_limit: int = spec(
        4096,
        "largest websocket frame a client may send, in bytes (larger: close 1009)",
        minimum=1,
    )
    chat_rate_count: int = spec(
        5,
        "chat messages a user may send per chat_rate_window, over all their sockets and processes",
        minimum=1,
    )
    chat_rate_window: float = spec(10.0, "seconds of the chat rate limits", above=0)
    chat_rate_address_count: int = spec(
        30,
        "chat messages all users from one client address (behind trusted proxies: the forwarded one) may send per "
        "chat_rate_window; 0 = no limit per address",
        minimum=0, message="{name} must be 0 (no limit) or more",
    )
    chat_history_size: int = spec(50, "messages guest/:id returns (the newest)", minimum=1)
    # The pages' emoji ship in the H5 build (images/emoji/<n>.gif), which is hosted at /h5/.
    chat_emoji_path: str = spec(
        "/h5/images/emoji/",
        "URL path of the emoji images kept in chat content",
        pattern=EMOJI_PATH_RE, message=EMOJI_PATH_MESSAGE,
    )
    chat_legacy_mode: bool = spec(True, "connections in no room receive every room's messages (old clients)")
    chat_presence_ttl: float = spec(15.0, "seconds a process's viewer counts outlive it in Redis", above=0)
    chat_online_interval: float = spec(1.0, "seconds between viewer count updates pushed to the rooms", above=0)
    chat_buffer_limit: int = spec(1048576, "bytes a slow reader may have queued before it is disconnected", minimum=1)
    chat_batch_window: float = spec(
        0.075,
        "seconds a busy room's messages may wait to reach a socket in one write (the latency budget); a room "
        "batches only while its pace fills a window with more than one message; 0 = each at once",
        minimum=0, maximum=1, note=" second",
    )
    chat_heartbeat: float = spec(30.0, "seconds between websocket pings; a socket missing the pong is dropped", above=0)
    chat_history_interval: float = spec(1.0, "seconds between batch writes of chat history to PostgreSQL", above=0)
    # Chat sockets need no token, and a websocket is never idle: without these caps one client could
    # hold every connection slot of a process. Per process, like max_connections (README: Security settings).
    chat_max_per_address: int = spec(
        50,
        "chat websockets one client address may hold per process (IPv6: per /64); past it the upgrade is refused with "
        "429. Viewers behind a carrier's NAT share an address",
        minimum=1,
    )
    chat_max_per_user: int = spec(
        5,
        "chat websockets one signed-in user may hold per process; past it the socket that signs in gets the error "
        "frame 10010 and is closed",
        minimum=1,
    )
    chat_connection_share: float = spec(
        0.75,
        "share of max_connections chat websockets may take, the rest kept for plain HTTP; past it the upgrade is "
        "refused with 503",
        minimum=0.1, maximum=0.95, note=" (some slots stay for plain HTTP)",
    )
    # WeChat Official Account. No appid = development logins (any code is an identity).
    wechat_appid: str = spec("", "Official Account AppID; empty = dev logins")
    wechat_secret: str = spec("", "Official Account AppSecret", secret=True)
    wechat_api_url: str = spec("https://api.weixin.qq.com", "WeChat API base URL", schemes=HTTP)
    # WeChat Pay v2.
    wechatpay_api_url: str = spec("https://api.mch.weixin.qq.com", "WeChat Pay API base URL", schemes=HTTP)
    wechatpay_mch_id: str = spec("", "merchant id; empty = dev payments")
    wechatpay_api_key: str = spec("", "merchant API key", secret=True)
    wechatpay_notify_url: str = spec("", "public https URL of pay/notify")
    pay_sign_type: str = spec("MD5", "WeChat Pay v2 signature: MD5 or HMAC-SHA256", choices=("MD5", "HMAC-SHA256"))
    wechatpay_cert_path: str = spec(
        "",
        "merchant API certificate (apiclient_cert.pem): API v3 names its key by it in every request; API v2 shows it "
        "for refunds (mutual TLS; empty = refunds through WeChat Pay v2 refused)",
        pem="certificate",
    )
    wechatpay_key_path: str = spec(
        "",
        "private key of that certificate (apiclient_key.pem, without a pass phrase): it signs every API v3 request",
        secret=True, pem="wechatpay_cert_path",
    )
    wechatpay_ca_file: str = spec(
        "",
        "CA bundle that verifies the WeChat Pay server; empty = the system's CAs",
        pem="certificate",
    )
    wechatpay_apiv3_key: str = spec(
        "",
        "APIv3 key (32 characters, 商户平台 → API安全); set = WeChat Pay API v3 (signed with wechatpay_key_path, "
        "its certificate wechatpay_cert_path), else v2",
        secret=True, pattern=re.compile(r"([\x21-\x7e]{32})?"), message="{name} must be 32 ASCII characters",
    )
    wechatpay_public_key_path: str = spec(
        "",
        "v3: the WeChat Pay public key (pub_key.pem, 商户平台 → API安全 → 微信支付公钥) that verifies WeChat's "
        "answers and notifications",
    )
    wechatpay_public_key_id: str = spec(
        "", "v3: that public key's id, PUB_KEY_ID_ and digits",
        pattern=re.compile(r"(PUB_KEY_ID_[0-9]{1,64})?"),
        message="{name} must be PUB_KEY_ID_ and digits, got {value!r}",
    )
    wechatpay_platform_cert_paths: tuple[str, ...] = spec(
        (),
        "v3: comma-separated WeChat Pay platform certificates (PEM) that verify WeChat's answers and notifications, "
        "for a merchant still on certificates, or beside the public key during the switch-over",
    )
    wechatpay_refund_notify_url: str = spec(
        "",
        "public https URL of pay/refund_notify (no query); empty = on the host of wechatpay_notify_url, else of "
        "public_url",
        schemes=HTTP, check=no_query,
    )
    refund_membership_rule: str = spec(
        "full-revokes",
        "what a completed refund does to the membership its order paid for: full-revokes (a full refund ends it, a "
        "partial one keeps it), prorated (the unused term is cut by the refunded share) or keep",
        choices=REFUND_MEMBERSHIP_RULES,
    )
    # WeChat wants time_expire (the time-out) more than 5 minutes ahead, so a prepay is made only while
    # 6 remain (services/orders.py PREPAY_LEAD): 10 leaves a buyer 4 to start paying. One prepay id
    # (2 hours) must outlive the order.
    order_expire_minutes: int = spec(
        30,
        "minutes an order awaits payment before it times out (10 to 110)",
        minimum=10, maximum=110,
    )
    reconcile_interval: float = spec(
        60.0,
        "seconds between rounds of order expiry and payment queries to WeChat Pay",
        above=0,
    )
    # Notices to members (WeChat template messages, SMS as the fallback).
    notice_interval: float = spec(2.0, "seconds between rounds of the notice sender", above=0)
    notice_reminder_hours: int = spec(2, "hours before a match its reminder goes to the members signed up",
                                      minimum=1, maximum=72)
    notice_concurrency: int = spec(16, "notices sent at once by the sender", minimum=1, maximum=200)
    notice_editor_daily_cap: int = spec(
        2, "staff notices an editor may send a day (owners: no cap); 0 = editors may not send", minimum=0)
    # Aliyun.
    aliyun_access_key_id: str = spec("", "Aliyun AccessKey id")
    aliyun_access_key_secret: str = spec("", "Aliyun AccessKey secret", secret=True)
    aliyun_sms_url: str = spec("https://dysmsapi.aliyuncs.com/", "Dysmsapi endpoint", schemes=HTTP)
    aliyun_live_url: str = spec("https://live.aliyuncs.com/", "Aliyun Live endpoint", schemes=HTTP)
    aliyun_live_domain: str = spec(
        "",
        "Aliyun Live play domain (online list, CDN viewer counts); empty = Aliyun Live off",
    )
    aliyun_live_app_name: str = spec("", "only this Aliyun Live AppName is tracked; empty = every app of the domain")
    aliyun_live_callback_key: str = spec("", "Aliyun Live stream callback auth key (ALI-LIVE-SIGNATURE)", secret=True)
    # Live status tracking (stream callbacks of Aliyun Live, SRS, nginx-rtmp).
    live_push_secret: str = spec(
        "",
        "secret pushers put in the push URL (?token=); SRS / nginx-rtmp callbacks without it are refused",
        secret=True,
    )
    live_poll_interval: float = spec(
        30.0,
        "seconds between checks of Aliyun Live's online streams (Aliyun Live only)",
        above=0,
    )
    # SMS verification codes.
    sms_provider: str = spec("console", "console (code in the log) or aliyun", choices=("console", "aliyun"))
    sms_sign_name: str = spec("", "Aliyun SMS SignName")
    sms_template_code: str = spec("", "Aliyun SMS TemplateCode (variable ${code})")
    sms_phone_daily_limit: int = spec(10, "codes per phone per day", minimum=1)
    sms_ip_daily_limit: int = spec(30, "codes per client IP per day", minimum=1)
    # Live push and play URLs made by the admin console (Aliyun Live type-A auth_key).
    aliyun_live_push_domain: str = spec("", "Aliyun Live push (ingest) domain; empty = push URLs entered by hand")
    aliyun_live_push_key: str = spec("", "URL signing (auth_key) key of the push domain", secret=True)
    aliyun_live_play_domain: str = spec(
        "",
        "Aliyun Live play domain of generated play URLs; empty = aliyun_live_domain",
    )
    aliyun_live_play_key: str = spec(
        "",
        "URL signing (auth_key) key of the play domain; empty = play URLs unsigned",
        secret=True,
    )
    aliyun_live_url_ttl: int = spec(
        604800,
        "seconds a generated push or play URL stays valid (auth_key expiry)",
        minimum=1,
    )
    # The admin console (/admin/).
    admin_idle_timeout: int = spec(
        1800,
        "seconds of inactivity after which a console session ends (background polls of an open page are no activity)",
        minimum=1,
    )
    admin_session_lifetime: int = spec(
        43200,
        "seconds after sign-in a console session ends however active it is",
        minimum=1,
    )
    admin_login_account_limit: int = spec(
        5,
        "console sign-ins an account may fail before it is slowed down (a wait of admin_login_backoff, doubling with "
        "each failure)",
        minimum=1,
    )
    admin_login_backoff: int = spec(
        30,
        "seconds of the first wait of a slowed-down account (doubling with each failure, at most admin_login_window); "
        "addresses that never failed on it do not wait",
        minimum=1,
    )
    admin_login_memory: int = spec(
        86400,
        "seconds an account's failed sign-ins (and the addresses they came from) are remembered after the last one",
        minimum=1,
    )
    admin_login_ip_limit: int = spec(
        20,
        "console sign-in attempts per client address (IPv6: per /64) per admin_login_window before refusing",
        minimum=1,
    )
    admin_login_window: int = spec(
        900,
        "seconds an address's sign-in attempts are counted for; also the longest wait of a slowed-down account",
        minimum=1,
    )
    admin_uploads_per_client: int = spec(
        2,
        "console uploads one account or client address may send at once (per process)",
        minimum=1,
    )
    upload_image_max_bytes: int = spec(
        5242880,
        "largest image the console accepts (covers, logos, banners), in bytes",
        minimum=1,
    )
    upload_video_max_bytes: int = spec(524288000, "largest video file the console accepts, in bytes", minimum=1)

    def __post_init__(self) -> None:
        problem = settings_problem(self)
        if problem:
            raise SettingsError(problem)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def media_path(self) -> Path:
        return Path(self.media_dir or Path(self.var_dir) / "media")

    @property
    def fixed_public_base(self) -> str | None:
        """public_url without its trailing slash, when set: the base of every URL handed out, whatever the
        request (web.public_urls.public_base); None in development, where a request's Host may tell it."""
        return self.public_url.rstrip("/") or None

    @property
    def base_url(self) -> str:
        """The site's base URL where no request tells it: public_url, else this server's own address."""
        if self.fixed_public_base:
            return self.fixed_public_base
        host = "localhost" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def dev_wechat(self) -> bool:
        return not self.wechat_appid

    def public_url_problem(self) -> str | None:
        """Why this deployment may not serve as it is set (one line), or None.

        Outside development mode (a WeChat AppID set) every URL the server hands out (media, the chat
        port's redirect, WeChat Pay's notify URL) comes from public_url, never from a request's Host.
        """
        if self.dev_wechat or self.public_url:
            return None
        return ("JIANDONG_PUBLIC_URL is required when JIANDONG_WECHAT_APPID is set (outside development mode): "
                "the URLs the server hands out are built from it, never from a request's Host header")

    def replace(self, **changes: typing.Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def public(self) -> dict[str, typing.Any]:
        """The settings with secrets masked, for the start-up log."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = "***"
            elif f.name.endswith("_url") and value:
                value = mask_url_password(value)
            out[f.name] = value
        return out

    def describe(self, origins: typing.Mapping[str, str] | None = None) -> str:
        """The settings that differ from the defaults, one per line with secrets masked, for the start-up log;
        `origins` names where a value came from when nobody set it (e.g. {"database_url": "embedded"})."""
        defaults = Settings().public()
        changed = {name: value for name, value in self.public().items() if value != defaults[name]}
        if not changed:
            return "settings: all at their defaults"
        origins = origins or {}
        lines = [f"  {ENV_PREFIX}{name.upper()} = {_shown(value)}" + (f"  ({origins[name]})" if name in origins else "")
                 for name, value in changed.items()]
        return "\n".join([f"settings ({len(changed)} not at their default; secrets masked):", *lines])


def _shown(value: typing.Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _either(choices: typing.Sequence[str]) -> str:
    """ "a or b", "a, b or c"."""
    return " or ".join([", ".join(choices[:-1]), choices[-1]]) if len(choices) > 1 else "".join(choices)


def _bounds_problem(rule: Rule, value: typing.Any) -> str | None:
    # Written "not ... >=" so that NaN is refused too.
    if rule.above is not None and not value > rule.above:
        return "{name} must be positive" if rule.above == 0 else f"{{name}} must be more than {rule.above}"
    if (rule.minimum is None or value >= rule.minimum) and (rule.maximum is None or value <= rule.maximum):
        return None
    if rule.maximum is None:
        return f"{{name}} must be at least {rule.minimum}"
    if rule.minimum is None:
        return f"{{name}} must be at most {rule.maximum}"
    return f"{{name}} must be between {rule.minimum} and {rule.maximum}{rule.note}"


def _choice_problem(rule: Rule, value: str) -> str | None:
    if not rule.choices or (rule.fold(value) if rule.fold else value) in rule.choices:
        return None
    if len(rule.choices) == 2:
        return "{name} must be {choices}, got {value!r}"
    return f"{{name}} must be one of {', '.join(rule.choices)}, got {{value!r}}"


# What an http(s) URL may hold as written (RFC 3986 §2: unreserved, reserved, percent-escapes). A URL setting
# is copied into answers, pages and JSON: a quote or a backslash in it would break them.
URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def _url_fits(value: str, schemes: tuple[str, ...]) -> bool:
    try:
        url = urlsplit(value)
        if url.scheme not in schemes:
            return False
        return schemes != HTTP or (bool(url.hostname) and URL_CHARACTERS.fullmatch(value) is not None)
    except ValueError:  # an unclosed "[" of an IPv6 host, a port that is no number
        return False


def _shape_problem(rule: Rule, value: str) -> str | None:
    if rule.pattern is not None and not rule.pattern.fullmatch(value):
        return "{name} must match " + rule.pattern.pattern.replace("{", "{{").replace("}", "}}")
    if rule.schemes and value and not _url_fits(value, rule.schemes):
        if rule.schemes == HTTP:
            return "{name} must be an http(s) URL, got {value!r}"
        return "{name} must start with " + _either([f"{scheme}://" for scheme in rule.schemes])
    return None


def field_problem(f: dataclasses.Field[typing.Any], value: typing.Any) -> str | None:
    """What is wrong with `value` for the setting `f`, by the Rule declared with it (one line), or None."""
    rule = f.metadata.get("rule")
    if rule is None:
        return None
    problem = _bounds_problem(rule, value) or _choice_problem(rule, value) or _shape_problem(rule, value)
    if problem:
        return (rule.message or problem).format(name=f.name, value=value, choices=_either(rule.choices))
    return rule.check(f.name, value) if rule.check else None


# Settings that only make sense together: (broken when, message formatted with s). Checked after each
# setting's own rule, in this order; the first one broken stops start-up.
RULES: tuple[tuple[typing.Callable[[Settings], bool], str], ...] = (
    (lambda s: s.chat_port == s.port, "chat_port must differ from port ({s.port}); 0 turns the chat port off"),
    (lambda s: s.chat_presence_ttl < 2 * s.chat_online_interval,
     "chat_presence_ttl must be at least twice chat_online_interval"),
    (lambda s: bool(s.aliyun_live_domain) and not (s.aliyun_access_key_id and s.aliyun_access_key_secret),
     "aliyun_live_domain needs aliyun_access_key_id and aliyun_access_key_secret"),
    (lambda s: s.sms_provider == "aliyun" and not (s.aliyun_access_key_id and s.aliyun_access_key_secret
                                                   and s.sms_sign_name and s.sms_template_code),
     "sms_provider aliyun needs aliyun_access_key_id, aliyun_access_key_secret, sms_sign_name and sms_template_code"),
    (lambda s: bool(s.wechat_appid) and not s.wechat_secret, "wechat_appid is set but wechat_secret is not"),
    (lambda s: bool(s.wechatpay_mch_id) and not ((s.wechatpay_api_key or s.wechatpay_apiv3_key) and s.wechat_appid),
     "wechatpay_mch_id needs wechat_appid and wechatpay_api_key (API v2) or wechatpay_apiv3_key (API v3)"),
    (lambda s: bool(s.wechatpay_apiv3_key) and not (s.wechatpay_mch_id and s.wechatpay_cert_path),
     "wechatpay_apiv3_key needs wechatpay_mch_id, wechatpay_cert_path and wechatpay_key_path (the merchant API "
     "certificate and its key, which sign every v3 request)"),
    (lambda s: bool(s.wechatpay_apiv3_key) and not (s.wechatpay_public_key_path or s.wechatpay_platform_cert_paths),
     "wechatpay_apiv3_key needs wechatpay_public_key_path and wechatpay_public_key_id (the WeChat Pay public key), "
     "or wechatpay_platform_cert_paths (platform certificates), to check what WeChat Pay signs"),
    (lambda s: bool(s.wechatpay_public_key_path) != bool(s.wechatpay_public_key_id),
     "wechatpay_public_key_path and wechatpay_public_key_id go together"),
    (lambda s: bool(s.wechatpay_cert_path) != bool(s.wechatpay_key_path),
     "wechatpay_cert_path and wechatpay_key_path go together (both PEM files, or neither)"),
    (lambda s: bool(s.aliyun_live_push_domain) and not s.aliyun_live_push_key,
     "aliyun_live_push_domain needs aliyun_live_push_key (the push domain's auth_key key)"),
    (lambda s: bool(s.aliyun_live_push_domain) and not (s.aliyun_live_play_domain or s.aliyun_live_domain),
     "aliyun_live_push_domain needs aliyun_live_play_domain (or aliyun_live_domain)"),
)


def settings_problem(s: Settings) -> str | None:
    """The first setting, or pair of settings, that breaks its rule (one line), or None."""
    for f in dataclasses.fields(s):
        problem = field_problem(f, getattr(s, f.name))
        if problem:
            return problem
    for broken, message in RULES:
        if broken(s):
            return message.format(s=s)
    return None


def _parse(name: str, raw: str, kind: typing.Any) -> typing.Any:
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == tuple[str, ...]:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a valid {getattr(kind, '__name__', kind)}") from None


def setting_help(name: str) -> str:
    """One setting's help as declared, and the variable that sets it: for a CLI flag's --help."""
    return f"{Settings.__dataclass_fields__[name].metadata['help']} ({ENV_PREFIX}{name.upper()})"


def field_types() -> dict[str, typing.Any]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def load_settings(environ: typing.Mapping[str, str] | None = None, **overrides: typing.Any) -> Settings:
    """Build the settings from JIANDONG_* variables, then CLI overrides (None = not given)."""
    environ = os.environ if environ is None else environ
    types = field_types()
    values: dict[str, typing.Any] = {}
    for key, raw in environ.items():
        # JIANDONG_TEST_* belong to the test suite (which servers it uses), not to the server.
        if not key.startswith(ENV_PREFIX) or key.startswith(TEST_PREFIX):
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name not in types:
            raise SettingsError(f"unknown setting {key}{_suggestion(key, types)}")
        values[name] = _parse(key, raw, types[name])
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in types:
            raise SettingsError(f"unknown setting {name}")
        values[name] = _parse(f"--{name.replace('_', '-')}", value, types[name]) if isinstance(value, str) else value
    return Settings(**values)


def _suggestion(key: str, types: typing.Mapping[str, typing.Any]) -> str:
    """ "; did you mean JIANDONG_PORT?" for a name close to a known one, else where the list is."""
    # Compared without the prefix every name shares, which would make any two names look alike.
    close = difflib.get_close_matches(key[len(ENV_PREFIX):].lower(), list(types), n=1, cutoff=0.7)
    if close:
        return f"; did you mean {ENV_PREFIX}{close[0].upper()}?"
    return " (the README's configuration table lists every setting)"


def configure_logging(settings: Settings, process: str | None = None) -> None:
    """Log lines to stderr at the configured level, formatted and written by a thread of their own
    (lib/logqueue.py); `process` ("main", "worker 2") names a --workers process."""
    # Read by no formatter of ours, and each a cost per line: the process id is a system call each time.
    # (The logging module's documented way to skip them.)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(logformat.JsonFormatter(process) if settings.log_format == "json"
                         else logformat.TextFormatter(process))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[logqueue.off_loop(handler)])
    # Warnings (aiohttp's about a malformed multipart header, say) are log lines like any other.
    logging.captureWarnings(True)
    logthrottle.install(logging.getLogger().handlers)
