"""Aliyun ApsaraVideo Live: online streams, CDN viewer counts, callback signatures and type-A URL signing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import typing
from urllib.parse import urlsplit

from aiohttp import web

from ..keys import aliyun_live_key, client_session_key, settings_key
from ..settings import Settings
from .aliyun import AliyunError, AliyunRpc

logger = logging.getLogger(__name__)

LIVE_VERSION = "2016-11-01"
# DescribeLiveStreamsOnlineList allows up to 3000 per page.
ONLINE_PAGE_SIZE = 3000
# A runaway TotalPage must not loop for ever.
MAX_ONLINE_PAGES = 100


def live_configured(settings: Settings) -> bool:
    return bool(settings.aliyun_live_domain and settings.aliyun_access_key_id and settings.aliyun_access_key_secret)


def stream_name_of(value: str) -> str:
    """The stream name in "name", "app/name" or "rtmp://host/app/name?args" (answers differ in how they name it)."""
    path = urlsplit(value).path if "://" in value else value.split("?", 1)[0]
    return path.rstrip("/").rsplit("/", 1)[-1]


class AliyunLive:
    """The Live OpenAPI calls we make, for one play domain (and optionally one AppName)."""

    def __init__(self, rpc: AliyunRpc, domain: str, app_name: str = "") -> None:
        self.rpc = rpc
        self.domain = domain
        self.app_name = app_name
        self._viewer_call: asyncio.Future[dict[str, int]] | None = None

    async def online_streams(self) -> set[str]:
        """Names of the streams being pushed now (DescribeLiveStreamsOnlineList, every page); AliyunError on failure."""
        names: set[str] = set()
        page = 1
        while True:
            params = {
                "DomainName": self.domain,
                "OnlyStream": "yes",
                # Source streams only: a transcoded copy is named <stream>_<template>.
                "StreamType": "raw",
                "PageSize": str(ONLINE_PAGE_SIZE),
                "PageNum": str(page),
            }
            if self.app_name:
                params["AppName"] = self.app_name
            answer = await self.rpc.call("DescribeLiveStreamsOnlineList", LIVE_VERSION, params)
            items = (answer.get("OnlineInfo") or {}).get("LiveStreamOnlineInfo")
            if not isinstance(items, list):
                raise AliyunError(
                    "BadAnswer", "OnlineInfo.LiveStreamOnlineInfo missing", str(answer.get("RequestId", ""))
                )
            for item in items:
                if not isinstance(item, dict) or not item.get("StreamName"):
                    continue
                if self.app_name and item.get("AppName") not in (None, self.app_name):
                    continue
                names.add(str(item["StreamName"]))
            total_pages = _int(answer.get("TotalPage"), 1)
            if page >= total_pages or not items or page >= MAX_ONLINE_PAGES:
                return names
            page += 1

    async def viewer_counts(self) -> dict[str, int]:
        """CDN viewers by stream name, all transcodings together (DescribeLiveDomainOnlineUserNum).

        The domain-wide call replaces the deprecated DescribeLiveStreamOnlineUserNum; one call covers
        every stream. Aliyun counts FLV, RTS and RTMP viewers, not HLS, and its figures lag a little.
        Callers arriving while a call is in flight share it.
        """
        if self._viewer_call is None:
            call = asyncio.ensure_future(self._fetch_viewer_counts())
            self._viewer_call = call
            call.add_done_callback(self._viewer_call_done)
        # Shielded: a caller that gives up must not cancel the call the others wait on.
        return await asyncio.shield(self._viewer_call)

    def _viewer_call_done(self, call: asyncio.Future[dict[str, int]]) -> None:
        self._viewer_call = None
        if not call.cancelled():
            call.exception()  # retrieved here too, in case every caller gave up

    async def _fetch_viewer_counts(self) -> dict[str, int]:
        answer = await self.rpc.call("DescribeLiveDomainOnlineUserNum", LIVE_VERSION, {"DomainName": self.domain})
        items = (answer.get("OnlineUserInfo") or {}).get("LiveStreamOnlineUserNumInfo")
        if not isinstance(items, list):
            raise AliyunError("BadAnswer", "OnlineUserInfo.LiveStreamOnlineUserNumInfo missing",
                              str(answer.get("RequestId", "")))
        counts: dict[str, int] = {}
        for item in items:
            if not isinstance(item, dict) or not item.get("StreamName"):
                continue
            infos = (item.get("Infos") or {}).get("Info") or []
            viewers = sum(_int(info.get("UserNumber"), 0) for info in infos if isinstance(info, dict))
            name = stream_name_of(str(item["StreamName"]))
            counts[name] = counts.get(name, 0) + max(0, viewers)
        return counts


def _int(value: typing.Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def callback_signature(push_domain: str, timestamp: str, key: str) -> str:
    """ALI-LIVE-SIGNATURE: MD5(push_domain|timestamp|key), lower-case hex."""
    return hashlib.md5(f"{push_domain}|{timestamp}|{key}".encode()).hexdigest()


def callback_signature_valid(push_domain: str, timestamp: str, signature: str, key: str) -> bool:
    """Constant-time check of a callback's signature; the hex case is not specified, so either is taken."""
    if not key or not signature or not timestamp:
        return False
    expected = callback_signature(push_domain, timestamp, key).encode()
    return hmac.compare_digest(expected, signature.strip().lower().encode())


def auth_key_hash(uri: str, timestamp: int, key: str, rand: str = "0", uid: str = "0") -> str:
    """md5("<URI>-<timestamp>-<rand>-<uid>-<key>") of type-A signing."""
    return hashlib.md5(f"{uri}-{timestamp}-{rand}-{uid}-{key}".encode()).hexdigest()


def sign_url(url: str, key: str, timestamp: int, rand: str = "0", uid: str = "0") -> str:
    """`url` with a type-A `auth_key` valid until `timestamp` (unix seconds).

    The URI signed is the path with its suffix (`.flv`, `.m3u8`; RTMP URLs have none), without
    the query. Push URLs take the push domain's key, play URLs the play domain's key.
    """
    parts = urlsplit(url)
    digest = auth_key_hash(parts.path or "/", timestamp, key, rand, uid)
    auth = f"auth_key={timestamp}-{rand}-{uid}-{digest}"
    base = url.split("#", 1)[0]
    return f"{base}{'&' if parts.query else '?'}{auth}"


async def aliyun_live_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    if live_configured(settings):
        rpc = AliyunRpc(
            app[client_session_key],
            settings.aliyun_live_url,
            settings.aliyun_access_key_id,
            settings.aliyun_access_key_secret,
        )
        app[aliyun_live_key] = AliyunLive(rpc, settings.aliyun_live_domain, settings.aliyun_live_app_name)
    else:
        app[aliyun_live_key] = None
    yield


class LiveUrls(typing.NamedTuple):
    push: str
    rtmp: str
    flv: str
    m3u8: str


def aliyun_urls_configured(settings: Settings) -> bool:
    return bool(settings.aliyun_live_push_domain and settings.aliyun_live_push_key)


def live_urls(settings: Settings, app_name: str, stream_name: str, now: int) -> LiveUrls:
    """Push and play URLs of a stream on the configured Aliyun Live domains, signed (type A) until
    now + aliyun_live_url_ttl; play URLs stay unsigned when the play domain has no key."""
    expires = now + settings.aliyun_live_url_ttl
    play_domain = settings.aliyun_live_play_domain or settings.aliyun_live_domain
    path = f"/{app_name}/{stream_name}"

    def play(url: str) -> str:
        return sign_url(url, settings.aliyun_live_play_key, expires) if settings.aliyun_live_play_key else url

    return LiveUrls(
        push=sign_url(f"rtmp://{settings.aliyun_live_push_domain}{path}", settings.aliyun_live_push_key, expires),
        rtmp=play(f"rtmp://{play_domain}{path}"),
        flv=play(f"https://{play_domain}{path}.flv"),
        m3u8=play(f"https://{play_domain}{path}.m3u8"),
    )


def with_push_token(url: str, secret: str) -> str:
    """An SRS / nginx-rtmp push URL carrying `token=<secret>` (the callbacks refuse a publish without it)."""
    if not secret or not url:
        return url
    parts = urlsplit(url)
    pairs = [p for p in parts.query.split("&") if p and not p.startswith("token=")]
    query = "&".join([*pairs, f"token={secret}"])
    return parts._replace(query=query).geturl()
