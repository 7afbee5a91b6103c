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

from .lib import logformat, logthrottle

ENV_PREFIX = "JIANDONG_"
TEST_PREFIX = "JIANDONG_TEST_"
EMOJI_PATH_RE = re.compile(r"/(?:[A-Za-z0-9._~-]+/)*")
REFUND_MEMBERSHIP_RULES = ("full-revokes", "prorated", "keep")


class SettingsError(ValueError):
    """A setting is unknown or malformed; start-up stops with this message."""


@dataclass(frozen=True)
class Settings:
    # Servers. Empty URLs mean: start the embedded PostgreSQL / Redis under var_dir.
    database_url: str = field(default="", metadata={"help": "PostgreSQL URL; empty = embedded server"})
    redis_url: str = field(default="", metadata={"help": "Redis URL; empty = embedded server"})
    redis_prefix: str = field(default="jd:", metadata={"help": "prefix of every Redis key and channel"})
    db_pool_size: int = field(default=10, metadata={"help": "PostgreSQL connections per process"})
    db_timeout: float = field(
        default=3.0,
        metadata={"help": "seconds a PostgreSQL connect, statement or wait for a free connection may take (then 503)"},
    )
    redis_timeout: float = field(
        default=2.0, metadata={"help": "seconds a Redis connect or command may take (then 503)"}
    )
    host: str = field(default="0.0.0.0", metadata={"help": "HTTP listen address"})
    port: int = field(default=8080, metadata={"help": "HTTP port (API, docs, /ws)"})
    chat_port: int = field(default=19833, metadata={"help": "dedicated chat websocket port; 0 = off"})
    workers: int = field(
        default=1, metadata={"help": "server processes accepting on the same ports; 1 = one process"}
    )
    var_dir: str = field(default="var", metadata={"help": "data of the embedded servers"})
    media_dir: str = field(default="", metadata={"help": "uploaded files; empty = <var_dir>/media"})
    public_url: str = field(
        default="",
        metadata={"help": "public base URL (https://club.example.com) of every URL handed out; required with a "
                          "WeChat AppID; empty (development mode only) = from the request"}
    )
    trust_proxy: bool = field(
        default=False, metadata={"help": "take the client IP from X-Forwarded-For (behind a proxy)"}
    )
    trusted_proxies: tuple[str, ...] = field(
        default=("127.0.0.0/8", "::1/128"),
        metadata={
            "help": "comma-separated addresses or CIDRs of the proxies in front (with trust_proxy): the client "
            "IP is the rightmost X-Forwarded-For address that is not one of them"
        },
    )
    max_connections: int = field(
        default=10000,
        metadata={
            "help": "open HTTP and websocket connections per process; past it the longest-idle one is closed, "
            "or the new one when none is idle"
        },
    )
    idle_timeout: float = field(
        default=15.0,
        metadata={"help": "seconds a connection may wait for a request's headers, first or next, before it is closed"},
    )
    body_timeout: float = field(
        default=30.0, metadata={"help": "seconds a request's body may take to arrive (longer: 408)"}
    )
    timezone: str = field(default="Asia/Shanghai", metadata={"help": "the club's time zone"})
    log_level: str = field(default="INFO", metadata={"help": "DEBUG, INFO, WARNING or ERROR"})
    log_format: str = field(
        default="text", metadata={"help": "text, or json: one JSON object per line (time, level, logger, message, "
                                          "request id, route, status, duration, user id)"}
    )
    access_log: bool = field(default=True, metadata={"help": "a log line per request (logger jiandong.access)"})
    metrics_allow: tuple[str, ...] = field(
        default=("127.0.0.0/8", "::1/128"),
        metadata={"help": "comma-separated addresses or CIDRs allowed to read /metrics; empty = none (token only)"},
    )
    metrics_token: str = field(
        default="", metadata={"help": "bearer token that opens /metrics from anywhere; empty = none", "secret": True}
    )
    metrics_dir: str = field(
        default="", metadata={"help": "the workers' metric files (with --workers), emptied at start; "
                                      "empty = <var_dir>/metrics/<port>"}
    )
    token_ttl: int = field(default=7200, metadata={"help": "seconds a login token lives"})
    cors_origins: tuple[str, ...] = field(
        default=(), metadata={"help": "comma-separated origins allowed by CORS (* = any)"}
    )
    h5_dir: str = field(default="", metadata={"help": "directory of a built H5 front end, served at /h5/"})
    http_timeout: float = field(default=10.0, metadata={"help": "seconds for a call to an outside service"})
    counter_flush_interval: float = field(
        default=5.0, metadata={"help": "seconds between moves of pending view counts from Redis to PostgreSQL"}
    )
    content_cache_ttl: float = field(
        default=60.0, metadata={"help": "seconds hot content stays cached in a process (changes invalidate at once)"}
    )
    # Live-room chat (websocket).
    chat_frame_limit: int = field(
        default=4096, metadata={"help": "largest websocket frame a client may send, in bytes (larger: close 1009)"}
    )
    chat_rate_count: int = field(
        default=5,
        metadata={"help": "chat messages a user may send per chat_rate_window, over all their sockets and processes"},
    )
    chat_rate_window: float = field(default=10.0, metadata={"help": "seconds of the chat rate limits"})
    chat_rate_address_count: int = field(
        default=30,
        metadata={
            "help": "chat messages all users from one client address (behind trusted proxies: the forwarded "
            "one) may send per chat_rate_window; 0 = no limit per address"
        },
    )
    chat_history_size: int = field(default=50, metadata={"help": "messages guest/:id returns (the newest)"})
    # The pages' emoji ship in the H5 build (images/emoji/<n>.gif), which is hosted at /h5/.
    chat_emoji_path: str = field(
        default="/h5/images/emoji/", metadata={"help": "URL path of the emoji images kept in chat content"}
    )
    chat_legacy_mode: bool = field(
        default=True, metadata={"help": "connections in no room receive every room's messages (old clients)"}
    )
    chat_presence_ttl: float = field(
        default=15.0, metadata={"help": "seconds a process's viewer counts outlive it in Redis"}
    )
    chat_online_interval: float = field(
        default=1.0, metadata={"help": "seconds between viewer count updates pushed to the rooms"}
    )
    chat_buffer_limit: int = field(
        default=1048576, metadata={"help": "bytes a slow reader may have queued before it is disconnected"}
    )
    chat_batch_window: float = field(
        default=0.075,
        metadata={"help": "seconds a busy room's messages may wait to reach a socket in one write; 0 = each at once"},
    )
    chat_heartbeat: float = field(
        default=30.0, metadata={"help": "seconds between websocket pings; a socket missing the pong is dropped"}
    )
    chat_history_interval: float = field(
        default=1.0, metadata={"help": "seconds between batch writes of chat history to PostgreSQL"}
    )
    # Chat sockets need no token, and a websocket is never idle: without these caps one client could
    # hold every connection slot of a process. Per process, like max_connections (README: Security settings).
    chat_max_per_address: int = field(
        default=50,
        metadata={"help": "chat websockets one client address may hold per process (IPv6: per /64); past it "
                          "the upgrade is refused with 429. Viewers behind a carrier's NAT share an address"},
    )
    chat_max_per_user: int = field(
        default=5,
        metadata={"help": "chat websockets one signed-in user may hold per process; past it the socket that "
                          "signs in gets the error frame 10010 and is closed"},
    )
    chat_connection_share: float = field(
        default=0.75,
        metadata={"help": "share of max_connections chat websockets may take, the rest kept for plain HTTP; "
                          "past it the upgrade is refused with 503"},
    )
    # WeChat Official Account. No appid = development logins (any code is an identity).
    wechat_appid: str = field(default="", metadata={"help": "Official Account AppID; empty = dev logins"})
    wechat_secret: str = field(default="", metadata={"help": "Official Account AppSecret", "secret": True})
    wechat_api_url: str = field(default="https://api.weixin.qq.com", metadata={"help": "WeChat API base URL"})
    # WeChat Pay v2.
    wechatpay_api_url: str = field(
        default="https://api.mch.weixin.qq.com", metadata={"help": "WeChat Pay API base URL"}
    )
    wechatpay_mch_id: str = field(default="", metadata={"help": "merchant id; empty = dev payments"})
    wechatpay_api_key: str = field(default="", metadata={"help": "merchant API key", "secret": True})
    wechatpay_notify_url: str = field(default="", metadata={"help": "public https URL of pay/notify"})
    pay_sign_type: str = field(default="MD5", metadata={"help": "WeChat Pay v2 signature: MD5 or HMAC-SHA256"})
    wechatpay_cert_path: str = field(
        default="",
        metadata={"help": "merchant API client certificate (apiclient_cert.pem) for refunds (mutual TLS); "
                          "empty = refunds through WeChat Pay refused", "pem": "certificate"},
    )
    wechatpay_key_path: str = field(
        default="",
        metadata={"help": "private key of that certificate (apiclient_key.pem)", "secret": True,
                  "pem": "wechatpay_cert_path"},
    )
    wechatpay_ca_file: str = field(
        default="", metadata={"help": "CA bundle that verifies the WeChat Pay server; empty = the system's CAs",
                              "pem": "certificate"}
    )
    wechatpay_refund_notify_url: str = field(
        default="",
        metadata={"help": "public https URL of pay/refund_notify (no query); empty = on the host of "
                          "wechatpay_notify_url, else of public_url"},
    )
    refund_membership_rule: str = field(
        default="full-revokes",
        metadata={"help": "what a completed refund does to the membership its order paid for: full-revokes (a full "
                          "refund ends it, a partial one keeps it), prorated (the unused term is cut by the "
                          "refunded share) or keep"},
    )
    order_expire_minutes: int = field(
        default=30, metadata={"help": "minutes an order awaits payment before it times out (10 to 110)"}
    )
    reconcile_interval: float = field(
        default=60.0, metadata={"help": "seconds between rounds of order expiry and payment queries to WeChat Pay"}
    )
    # Aliyun.
    aliyun_access_key_id: str = field(default="", metadata={"help": "Aliyun AccessKey id"})
    aliyun_access_key_secret: str = field(default="", metadata={"help": "Aliyun AccessKey secret", "secret": True})
    aliyun_sms_url: str = field(default="https://dysmsapi.aliyuncs.com/", metadata={"help": "Dysmsapi endpoint"})
    aliyun_live_url: str = field(default="https://live.aliyuncs.com/", metadata={"help": "Aliyun Live endpoint"})
    aliyun_live_domain: str = field(
        default="",
        metadata={"help": "Aliyun Live play domain (online list, CDN viewer counts); empty = Aliyun Live off"},
    )
    aliyun_live_app_name: str = field(
        default="", metadata={"help": "only this Aliyun Live AppName is tracked; empty = every app of the domain"}
    )
    aliyun_live_callback_key: str = field(
        default="", metadata={"help": "Aliyun Live stream callback auth key (ALI-LIVE-SIGNATURE)", "secret": True}
    )
    # Live status tracking (stream callbacks of Aliyun Live, SRS, nginx-rtmp).
    live_push_secret: str = field(
        default="",
        metadata={
            "help": "secret pushers put in the push URL (?token=); SRS / nginx-rtmp callbacks without it are refused",
            "secret": True,
        },
    )
    live_poll_interval: float = field(
        default=30.0, metadata={"help": "seconds between checks of Aliyun Live's online streams (Aliyun Live only)"}
    )
    # SMS verification codes.
    sms_provider: str = field(default="console", metadata={"help": "console (code in the log) or aliyun"})
    sms_sign_name: str = field(default="", metadata={"help": "Aliyun SMS SignName"})
    sms_template_code: str = field(default="", metadata={"help": "Aliyun SMS TemplateCode (variable ${code})"})
    sms_phone_daily_limit: int = field(default=10, metadata={"help": "codes per phone per day"})
    sms_ip_daily_limit: int = field(default=30, metadata={"help": "codes per client IP per day"})
    # Live push and play URLs made by the admin console (Aliyun Live type-A auth_key).
    aliyun_live_push_domain: str = field(
        default="", metadata={"help": "Aliyun Live push (ingest) domain; empty = push URLs entered by hand"}
    )
    aliyun_live_push_key: str = field(
        default="", metadata={"help": "URL signing (auth_key) key of the push domain", "secret": True}
    )
    aliyun_live_play_domain: str = field(
        default="", metadata={"help": "Aliyun Live play domain of generated play URLs; empty = aliyun_live_domain"}
    )
    aliyun_live_play_key: str = field(
        default="", metadata={"help": "URL signing (auth_key) key of the play domain; empty = play URLs unsigned",
                              "secret": True}
    )
    aliyun_live_url_ttl: int = field(
        default=604800, metadata={"help": "seconds a generated push or play URL stays valid (auth_key expiry)"}
    )
    # The admin console (/admin/).
    admin_idle_timeout: int = field(
        default=1800, metadata={"help": "seconds of inactivity after which a console session ends (background "
                                        "polls of an open page are no activity)"}
    )
    admin_session_lifetime: int = field(
        default=43200, metadata={"help": "seconds after sign-in a console session ends however active it is"}
    )
    admin_login_account_limit: int = field(
        default=5, metadata={"help": "console sign-ins an account may fail before it is slowed down (a wait of "
                                     "admin_login_backoff, doubling with each failure)"}
    )
    admin_login_backoff: int = field(
        default=30, metadata={"help": "seconds of the first wait of a slowed-down account (doubling with each "
                                      "failure, at most admin_login_window); addresses that never failed on it "
                                      "do not wait"}
    )
    admin_login_memory: int = field(
        default=86400, metadata={"help": "seconds an account's failed sign-ins (and the addresses they came from) "
                                         "are remembered after the last one"}
    )
    admin_login_ip_limit: int = field(
        default=20, metadata={"help": "console sign-in attempts per client address (IPv6: per /64) per "
                                      "admin_login_window before refusing"}
    )
    admin_login_window: int = field(
        default=900, metadata={"help": "seconds an address's sign-in attempts are counted for; also the longest "
                                       "wait of a slowed-down account"}
    )
    admin_uploads_per_client: int = field(
        default=2, metadata={"help": "console uploads one account or client address may send at once (per process)"}
    )
    upload_image_max_bytes: int = field(
        default=5242880, metadata={"help": "largest image the console accepts (covers, logos, banners), in bytes"}
    )
    upload_video_max_bytes: int = field(
        default=524288000, metadata={"help": "largest video file the console accepts, in bytes"}
    )

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def media_path(self) -> Path:
        return Path(self.media_dir or Path(self.var_dir) / "media")

    @property
    def base_url(self) -> str:
        """The site's base URL where no request tells it: public_url, else this server's own address."""
        if self.public_url:
            return self.public_url.rstrip("/")
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


def _validate(s: Settings) -> None:
    for name in ("port", "chat_port"):
        value = getattr(s, name)
        if not 0 <= value <= 65535 or (name == "port" and value == 0):
            raise SettingsError(f"{name} must be a TCP port, got {value}")
    if s.chat_port == s.port:
        raise SettingsError(f"chat_port must differ from port ({s.port}); 0 turns the chat port off")
    for name in ("token_ttl", "db_pool_size", "sms_phone_daily_limit", "sms_ip_daily_limit", "workers"):
        if getattr(s, name) < 1:
            raise SettingsError(f"{name} must be at least 1")
    for name in ("http_timeout", "db_timeout", "redis_timeout", "idle_timeout", "body_timeout"):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name} must be positive")
    if s.max_connections < 16:
        raise SettingsError("max_connections must be at least 16")
    for name in ("chat_max_per_address", "chat_max_per_user"):
        if getattr(s, name) < 1:
            raise SettingsError(f"{name} must be at least 1")
    if not 0.1 <= s.chat_connection_share <= 0.95:
        raise SettingsError("chat_connection_share must be between 0.1 and 0.95 (some slots stay for plain HTTP)")
    for name in ("trusted_proxies", "metrics_allow"):
        for network in getattr(s, name):
            try:
                ipaddress.ip_network(network)
            except ValueError:
                raise SettingsError(f"{name}: {network!r} is not an IP address or CIDR network") from None
    if s.log_format not in ("text", "json"):
        raise SettingsError(f"log_format must be text or json, got {s.log_format!r}")
    for name in ("chat_frame_limit", "chat_rate_count", "chat_history_size", "chat_buffer_limit"):
        if getattr(s, name) < 1:
            raise SettingsError(f"{name} must be at least 1")
    if s.chat_rate_address_count < 0:
        raise SettingsError("chat_rate_address_count must be 0 (no limit) or more")
    for name in ("chat_rate_window", "chat_presence_ttl", "chat_online_interval", "chat_heartbeat",
                 "chat_history_interval"):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name} must be positive")
    if not 0 <= s.chat_batch_window <= 1:
        raise SettingsError("chat_batch_window must be between 0 and 1 second")
    if s.chat_presence_ttl < 2 * s.chat_online_interval:
        raise SettingsError("chat_presence_ttl must be at least twice chat_online_interval")
    # Written as is into every kept emoji tag, so it must be a plain path: no markup, no dot segment.
    if not EMOJI_PATH_RE.fullmatch(s.chat_emoji_path) or "/../" in s.chat_emoji_path or "/./" in s.chat_emoji_path:
        raise SettingsError("chat_emoji_path must be a URL path that starts and ends with / (letters, digits, -._~)")
    if s.counter_flush_interval <= 0:
        raise SettingsError("counter_flush_interval must be positive")
    if s.live_poll_interval <= 0:
        raise SettingsError("live_poll_interval must be positive")
    if s.aliyun_live_domain and not (s.aliyun_access_key_id and s.aliyun_access_key_secret):
        raise SettingsError("aliyun_live_domain needs aliyun_access_key_id and aliyun_access_key_secret")
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"timezone {s.timezone!r} is not a known time zone") from None
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"log_level {s.log_level!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL")
    if s.database_url and urlsplit(s.database_url).scheme not in ("postgres", "postgresql"):
        raise SettingsError("database_url must start with postgresql://")
    if s.redis_url and urlsplit(s.redis_url).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError("redis_url must start with redis://, rediss:// or unix://")
    for name in ("wechat_api_url", "wechatpay_api_url", "aliyun_sms_url", "aliyun_live_url", "public_url",
                 "wechatpay_refund_notify_url"):
        value = getattr(s, name)
        url = urlsplit(value)
        if value and (url.scheme not in ("http", "https") or not url.hostname or any(c.isspace() for c in value)):
            raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    # Links are built by appending paths to it.
    if s.public_url and (urlsplit(s.public_url).query or urlsplit(s.public_url).fragment):
        raise SettingsError(f"public_url must have no query or fragment, got {s.public_url!r}")
    if s.sms_provider not in ("console", "aliyun"):
        raise SettingsError(f"sms_provider must be console or aliyun, got {s.sms_provider!r}")
    if s.sms_provider == "aliyun" and not (
        s.aliyun_access_key_id and s.aliyun_access_key_secret and s.sms_sign_name and s.sms_template_code
    ):
        raise SettingsError(
            "sms_provider aliyun needs aliyun_access_key_id, aliyun_access_key_secret, "
            "sms_sign_name and sms_template_code"
        )
    if s.wechat_appid and not s.wechat_secret:
        raise SettingsError("wechat_appid is set but wechat_secret is not")
    if s.wechatpay_mch_id and not (s.wechatpay_api_key and s.wechat_appid):
        raise SettingsError("wechatpay_mch_id needs wechatpay_api_key and wechat_appid")
    if bool(s.wechatpay_cert_path) != bool(s.wechatpay_key_path):
        raise SettingsError("wechatpay_cert_path and wechatpay_key_path go together (both PEM files, or neither)")
    if s.refund_membership_rule not in REFUND_MEMBERSHIP_RULES:
        raise SettingsError(f"refund_membership_rule must be one of {', '.join(REFUND_MEMBERSHIP_RULES)}, "
                            f"got {s.refund_membership_rule!r}")
    if s.wechatpay_refund_notify_url and urlsplit(s.wechatpay_refund_notify_url).query:
        # WeChat Pay wants the notify_url without a query string (wechatpay-refund.md §1.3, §3).
        raise SettingsError("wechatpay_refund_notify_url must have no query string")
    if s.pay_sign_type not in ("MD5", "HMAC-SHA256"):
        raise SettingsError(f"pay_sign_type must be MD5 or HMAC-SHA256, got {s.pay_sign_type!r}")
    # WeChat wants time_expire (the time-out) more than 5 minutes ahead, so a prepay is made only while
    # 6 remain (services/orders.py PREPAY_LEAD): 10 leaves a buyer 4 to start paying. One prepay id
    # (2 hours) must outlive the order.
    if not 10 <= s.order_expire_minutes <= 110:
        raise SettingsError("order_expire_minutes must be between 10 and 110")
    if s.reconcile_interval <= 0:
        raise SettingsError("reconcile_interval must be positive")
    for name in ("aliyun_live_url_ttl", "admin_idle_timeout", "admin_session_lifetime", "admin_login_account_limit",
                 "admin_login_backoff", "admin_login_memory", "admin_login_ip_limit", "admin_login_window",
                 "admin_uploads_per_client", "upload_image_max_bytes", "upload_video_max_bytes"):
        if getattr(s, name) < 1:
            raise SettingsError(f"{name} must be at least 1")
    if s.aliyun_live_push_domain and not s.aliyun_live_push_key:
        raise SettingsError("aliyun_live_push_domain needs aliyun_live_push_key (the push domain's auth_key key)")
    if s.aliyun_live_push_domain and not (s.aliyun_live_play_domain or s.aliyun_live_domain):
        raise SettingsError("aliyun_live_push_domain needs aliyun_live_play_domain (or aliyun_live_domain)")


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
    """Log lines to stderr at the configured level; `process` ("main", "worker 2") names a --workers process."""
    handler = logging.StreamHandler()
    handler.setFormatter(logformat.JsonFormatter(process) if settings.log_format == "json"
                         else logformat.TextFormatter(process))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    # Warnings (aiohttp's about a malformed multipart header, say) are log lines like any other.
    logging.captureWarnings(True)
    logthrottle.install(logging.getLogger().handlers)
