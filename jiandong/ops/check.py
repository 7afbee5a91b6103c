"""`python server.py check`: what a deployment's settings lead to, one finding a line, before it serves.

A problem (a dependency that does not answer, a file that does not parse) makes the exit status 1;
a warning (a development mode still on, a Redis that forgets) does not.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import ssl
import typing
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import redis
from redis.cluster import ClusterNode, RedisCluster

from ..integrations import wechatpay_provider, wechatpay_v3
from ..services.notice_kinds import KINDS
from ..settings import Settings, mask_url_password
from ..store import db
from ..store.kv import seed_urls

OK, WARNING, PROBLEM = "ok", "warning", "problem"
# The merchant certificate and key, checked as API v3 loads them when v3 is on (wechatpay_v3_keys).
V3_FILES = ("wechatpay_cert_path", "wechatpay_key_path")
# The migration that made the notice tables (sql/014_notices.sql).
NOTICES_MIGRATION = 14


@dataclasses.dataclass(frozen=True)
class Finding:
    level: str
    text: str

    def __str__(self) -> str:
        return f"{self.level}: {self.text}"


def check(settings: Settings) -> list[Finding]:
    """Every finding, in the order a reader fixes them: settings' modes, PostgreSQL, Redis, files."""
    return [*modes(settings), *postgresql(settings), *redis_server(settings), *pem_files(settings),
            *wechatpay_v3_keys(settings)]


def modes(s: Settings) -> typing.Iterator[Finding]:
    """Development modes and settings that do not fit a public deployment."""
    if not s.wechat_appid:
        yield Finding(WARNING, "development logins are on (no JIANDONG_WECHAT_APPID): any code logs in as a user")
    if (problem := s.public_url_problem()) is not None:
        yield Finding(PROBLEM, problem)
    version = wechatpay_provider.api_version(s)
    if version == "dev":
        yield Finding(WARNING, "dev payments are on (no JIANDONG_WECHATPAY_MCH_ID): orders are paid without money")
    elif version == "v3":
        yield Finding(OK, f"WeChat Pay API v3, merchant {s.wechatpay_mch_id} (JIANDONG_WECHATPAY_APIV3_KEY is set)")
        if s.wechatpay_api_key:
            yield Finding(WARNING, "JIANDONG_WECHATPAY_API_KEY (API v2) is set too and is not used: API v3 is")
    else:
        yield Finding(OK, f"WeChat Pay API v2, merchant {s.wechatpay_mch_id} (JIANDONG_WECHATPAY_APIV3_KEY is not set)")
    if s.sms_provider == "console":
        yield Finding(WARNING, "SMS codes go to the log, not to phones (JIANDONG_SMS_PROVIDER=console)")
    if s.public_url and urlsplit(s.public_url).scheme != "https":
        yield Finding(WARNING, f"JIANDONG_PUBLIC_URL is not https ({s.public_url}): WeChat wants https pages")
    if s.public_url and not s.trust_proxy:
        yield Finding(WARNING, "JIANDONG_TRUST_PROXY is off: behind a proxy every client has the proxy's address "
                               "(SMS limits, WeChat Pay's client IP)")
    if s.wechatpay_mch_id and s.wechatpay_notify_url and urlsplit(s.wechatpay_notify_url).scheme != "https":
        yield Finding(WARNING, f"JIANDONG_WECHATPAY_NOTIFY_URL is not https ({s.wechatpay_notify_url})")
    public = [n for n in s.metrics_allow if not ipaddress.ip_network(n).is_private
              and not ipaddress.ip_network(n).is_loopback]
    if public:
        yield Finding(WARNING, f"/metrics is open to public networks ({', '.join(public)}): JIANDONG_METRICS_ALLOW")


def postgresql(s: Settings) -> typing.Iterator[Finding]:
    if not s.database_url:
        yield Finding(WARNING, f"no JIANDONG_DATABASE_URL: the server starts an embedded PostgreSQL under "
                               f"{s.var_dir} (development only); not checked")
        return
    where = mask_url_password(s.database_url)
    try:
        conn = psycopg2.connect(s.database_url, connect_timeout=max(1, round(s.db_timeout)))
    except psycopg2.Error as exc:
        yield Finding(PROBLEM, f"PostgreSQL at {where}: {first_line(exc)}")
        return
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            version = cur.fetchone()[0]
            cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            applied: set[int] = set()
            if cur.fetchone()[0]:
                cur.execute("SELECT version FROM schema_migrations")
                applied = {row[0] for row in cur.fetchall()}
            unset = _notices_without_a_channel(cur, applied) if s.wechat_appid else []
    finally:
        conn.close()
    yield Finding(OK, f"PostgreSQL {version} answers at {where}")
    if unset:
        yield Finding(WARNING, f"notices with neither a WeChat template nor an SMS template: {', '.join(unset)} "
                               "(recorded as unreachable, never sent; set them in the console: 通知 → 通知设置)")
    pending = [name for version, name, _ in db.migration_files() if version not in applied]
    if pending:
        yield Finding(WARNING, f"{len(pending)} migration(s) not applied yet: {', '.join(pending)} "
                               "(the server applies them when it starts; or python server.py migrate)")
    elif advice := db.search_advice(s.database_url):
        yield Finding(WARNING, advice)


def _notices_without_a_channel(cur: typing.Any, applied: set[int]) -> list[str]:
    """The names of the notice kinds switched on that have no way to reach anyone (none before the migration)."""
    if NOTICES_MIGRATION not in applied:
        return []
    cur.execute("SELECT kind, enabled, template_id <> '' OR sms_template_code <> '' FROM notice_kinds")
    saved = {kind: (enabled, reachable) for kind, enabled, reachable in cur.fetchall()}
    return [kind.label for name, kind in KINDS.items() if saved.get(name, (True, False)) == (True, False)]


def redis_server(s: Settings) -> typing.Iterator[Finding]:
    if not s.redis_url:
        yield Finding(WARNING, f"no JIANDONG_REDIS_URL: the server starts an embedded Redis under {s.var_dir} "
                               "(development only); not checked")
        return
    where = mask_url_password(s.redis_url)
    client: redis.Redis | RedisCluster | None = None
    try:
        client = _redis_client(s)
        if client is None:
            yield Finding(PROBLEM, f"Redis at {where}: several hosts are a cluster's seeds, and this Redis is "
                                   "no cluster node")
            return
        version = client.info("server").get("redis_version", "?")
        if isinstance(client, RedisCluster):
            # Each master keeps its own data: each must keep it on disk.
            nodes: list[tuple[str, dict[str, typing.Any]]] = [(n.name, {"target_nodes": n})
                                                               for n in client.get_primaries()]
            yield Finding(OK, f"Redis Cluster of {len(nodes)} masters (Redis {version}) answers at {where}")
        else:
            nodes = [("", {})]
            yield Finding(OK, f"Redis {version} answers at {where}")
        forgetful = []
        for name, target in nodes:
            try:
                appendonly = client.config_get("appendonly", **target).get("appendonly")
                save = client.config_get("save", **target).get("save")
            except redis.ResponseError:
                return  # CONFIG is often renamed away on a managed Redis: its persistence is its operator's.
            if appendonly != "yes" and not save:
                forgetful.append(name)
        if forgetful:
            on = f" on {', '.join(forgetful)}" if isinstance(client, RedisCluster) else ""
            yield Finding(WARNING, f"Redis keeps nothing on disk{on} (appendonly no, no save): a restart logs "
                                   "everyone out and loses chat not yet stored; set appendonly yes")
    except redis.RedisError as exc:
        yield Finding(PROBLEM, f"Redis at {where}: {first_line(exc)}")
    finally:
        if client is not None:
            client.close()


def _redis_client(s: Settings) -> redis.Redis | RedisCluster | None:
    """A client of the Redis at s.redis_url, a cluster client when the server says it is a cluster node
    (as the server tells them apart, store/kv.py); None for several hosts that are no cluster."""
    options: dict[str, typing.Any] = {"socket_timeout": s.redis_timeout, "socket_connect_timeout": s.redis_timeout,
                                      "decode_responses": True}
    seeds = seed_urls(s.redis_url)
    error: redis.RedisError | None = None
    for seed in seeds:
        probe = redis.Redis.from_url(seed, **options)
        try:
            cluster = bool(int(probe.info("cluster").get("cluster_enabled", 0)))
            break
        except redis.ConnectionError as exc:
            error = exc
        finally:
            probe.close()
    else:
        raise error or redis.ConnectionError(f"no Redis at {s.redis_url}")
    if not cluster:
        return redis.Redis.from_url(s.redis_url, **options) if len(seeds) == 1 else None
    hosts = [urlsplit(seed) for seed in seeds]
    return RedisCluster(startup_nodes=[ClusterNode(h.hostname or "127.0.0.1", h.port or 6379) for h in hosts],
                        username=hosts[0].username, password=hosts[0].password, ssl=hosts[0].scheme == "rediss",
                        **options)


def pem_files(s: Settings) -> typing.Iterator[Finding]:
    """Settings marked `pem` (a certificate, or a private key naming its certificate's setting) exist and parse."""
    fields = {f.name: f for f in dataclasses.fields(s)}
    # With API v3 the merchant's certificate and key are v3's signing files: wechatpay_v3_keys loads them as
    # v3 does (RSA, matching), and says it once.
    checked_by_v3 = V3_FILES if wechatpay_provider.api_version(s) == "v3" else ()
    for f in fields.values():
        path, kind = getattr(s, f.name), f.metadata.get("pem")
        if not kind or not path or f.name in checked_by_v3:
            continue
        name = f"JIANDONG_{f.name.upper()}"
        if not Path(path).is_file():
            yield Finding(PROBLEM, f"{name}: no file {path}")
            continue
        try:
            if kind == "certificate":
                ssl.PEM_cert_to_DER_cert(Path(path).read_text(encoding="ascii"))
            else:
                # A private key is checked against its certificate: both must parse and match.
                # An encrypted key is refused, not asked about: the server never has its pass phrase.
                ssl.create_default_context().load_cert_chain(getattr(s, kind), path, password=_no_pass_phrase)
        except (ValueError, ssl.SSLError, UnicodeDecodeError, OSError) as exc:
            yield Finding(PROBLEM, f"{name}: {path} does not parse as a PEM {kind if kind == 'certificate' else 'key'}"
                                   f" ({first_line(exc)})")


def _no_pass_phrase() -> str:
    raise ValueError("the key is encrypted; the server needs it without a pass phrase")


def wechatpay_v3_keys(s: Settings) -> typing.Iterator[Finding]:
    """v3's key files load as the server loads them; what signs our requests and what checks WeChat's."""
    if wechatpay_provider.api_version(s) != "v3":
        return
    try:
        keys = wechatpay_v3.Keys.load(s)
    except (OSError, ValueError, TypeError) as exc:
        yield Finding(PROBLEM, f"WeChat Pay API v3 keys do not load: {first_line(exc)}")
        return
    yield Finding(OK, f"WeChat Pay API v3: requests signed with the merchant certificate {keys.merchant_serial}; "
                      f"WeChat Pay's signatures checked with {', '.join(sorted(keys.wechat_keys))}")
    if s.wechatpay_public_key_id and s.wechatpay_platform_cert_paths:
        yield Finding(WARNING, "WeChat Pay API v3: both the public key and platform certificates are set, as during "
                               "the switch-over to the public key; drop JIANDONG_WECHATPAY_PLATFORM_CERT_PATHS once "
                               "WeChat Pay signs everything with the public key (from day 7 of the switch)")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
