"""Aliyun RPC-style OpenAPI: the v1 signature (HMAC-SHA1) and a small client shared by SMS and Live."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import logging
import typing
import uuid
from urllib.parse import quote

import aiohttp
from yarl import URL

from ..lib import encoding

logger = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
REGION_ID = "cn-hangzhou"


class AliyunError(Exception):
    """An Aliyun call failed: the answer's Code / Message / RequestId, or our own code for transport faults."""

    def __init__(self, code: str, message: str = "", request_id: str = "") -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        super().__init__(f"{code}: {message} (RequestId {request_id or '-'})")


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8, as Aliyun signs it (space is %20, `~` stays literal)."""
    return quote(value, safe="-_.~")


def canonical_query(params: typing.Mapping[str, str]) -> str:
    """The parameters except Signature, sorted by name, encoded and joined with `&`."""
    return "&".join(
        f"{percent_encode(name)}={percent_encode(value)}"
        for name, value in sorted(params.items())
        if name != "Signature"
    )


def string_to_sign(params: typing.Mapping[str, str], method: str = "GET") -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def rpc_signature(params: typing.Mapping[str, str], secret: str, method: str = "GET") -> str:
    """Base64(HMAC-SHA1(secret + '&', StringToSign)); the trailing `&` on the key is part of the scheme."""
    digest = hmac.new(
        (secret + "&").encode(), string_to_sign(params, method).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


class AliyunRpc:
    """Signed GET calls to one Aliyun RPC endpoint (e.g. https://dysmsapi.aliyuncs.com/)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, access_key_id: str, access_key_secret: str) -> None:
        self.session = session
        self.url = url
        self.access_key_id = access_key_id
        self._secret = access_key_secret

    def __repr__(self) -> str:
        # Keeps the secret out of any log line or traceback that prints the client.
        return f"AliyunRpc({self.url!r}, access_key_id={self.access_key_id!r})"

    def signed_query(self, action: str, version: str, params: typing.Mapping[str, str]) -> str:
        """The full query string of a call: common and action params plus the Signature."""
        query = {
            "Format": "JSON",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": str(uuid.uuid4()),
            "SignatureVersion": "1.0",
            "Timestamp": dt.datetime.now(dt.timezone.utc).strftime(TIMESTAMP_FORMAT),
            "AccessKeyId": self.access_key_id,
            "Action": action,
            "Version": version,
            "RegionId": REGION_ID,
            **params,
        }
        query["Signature"] = rpc_signature(query, self._secret, "GET")
        return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in query.items())

    async def call(self, action: str, version: str, params: typing.Mapping[str, str]) -> dict[str, typing.Any]:
        """The JSON answer of a 2xx reply; AliyunError for anything else (HTTP error, timeout, bad JSON)."""
        # Sent pre-encoded so the bytes on the wire are exactly the ones that were signed.
        url = URL(f"{self.url}?{self.signed_query(action, version, params)}", encoded=True)
        try:
            async with self.session.get(url) as resp:
                status = resp.status
                raw = await resp.read()
        except asyncio.TimeoutError:
            raise self._fail(action, AliyunError("Timeout", "no answer in time")) from None
        except aiohttp.ClientError as exc:
            raise self._fail(action, AliyunError("NetworkError", type(exc).__name__)) from None
        try:
            body = encoding.loads(raw)
        except encoding.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise self._fail(action, AliyunError(f"HTTP{status}", "answer is not a JSON object"))
        if status >= 300:
            error = AliyunError(
                str(body.get("Code") or f"HTTP{status}"), str(body.get("Message", "")), str(body.get("RequestId", ""))
            )
            raise self._fail(action, error)
        return body

    def _fail(self, action: str, error: AliyunError) -> AliyunError:
        logger.warning(
            "Aliyun %s at %s failed: Code=%s Message=%s RequestId=%s",
            action, self.url, error.code, error.message, error.request_id,
        )
        return error
