"""A fake Aliyun Live OpenAPI (Version 2016-11-01) following wechat-aliyun.md §5.1.

It checks the RPC v1 signature with the fake signer of tests/fakes/aliyun.py (not the project's),
answers DescribeLiveStreamsOnlineList (with paging) and DescribeLiveDomainOnlineUserNum from the
streams and viewers a test sets, records every call, and fails on demand like Aliyun does.
Gateway error names and statuses are the same assumption as in the SMS fake, and so is the
Timestamp rule: a request stamped more than 15 minutes from Aliyun's clock is refused with
InvalidTimeStamp.Expired (`skew` sets how far that clock runs from the caller's).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import uuid

from aiohttp import web

from tests.fakes.aliyun import COMMON_PARAMS, Clock, fake_signature, timestamp_error

ACTIONS = ("DescribeLiveStreamsOnlineList", "DescribeLiveDomainOnlineUserNum")


class FakeAliyunLive(Clock):
    """`server = await aiohttp_server(fake.app())`; set `fake.streams`, `fake.viewers`, `fake.fail_code` ..."""

    def __init__(
        self, domain: str = "live.club.example.com", access_key_id: str = "LTAI5tFakeLiveId",
        access_key_secret: str = "fake-live-secret",
    ) -> None:
        super().__init__()
        self.domain = domain
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        # (AppName, StreamName) being pushed now.
        self.streams: list[tuple[str, str]] = []
        # StreamName -> {transcode template: viewers}; "origin" is the source stream.
        self.viewers: dict[str, dict[str, int]] = {}
        # How DescribeLiveDomainOnlineUserNum names a stream: "name" or "url" (rtmp://domain/app/name).
        self.viewer_stream_naming = "name"
        self.max_page_size = 3000
        self.requests: list[dict[str, str]] = []
        self.nonces: set[str] = set()
        # Failure switches: an error Code (HTTP 400 unless `fail_status`), a bare HTTP status, a delay.
        self.fail_code: str | None = None
        self.fail_status = 400
        self.http_status: int | None = None
        self.delay = 0.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/", self.handle)
        return app

    def calls(self, action: str) -> list[dict[str, str]]:
        return [r for r in self.requests if r.get("Action") == action]

    async def handle(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            return web.Response(status=405)
        params = dict(request.query)
        self.requests.append(params)
        request_id = str(uuid.uuid4()).upper()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.http_status is not None:
            return web.Response(status=self.http_status, text="Service Unavailable")

        def error(code: str, message: str, status: int = 400) -> web.Response:
            return web.json_response(
                {"Code": code, "Message": message, "RequestId": request_id, "HostId": "live.aliyuncs.com"},
                status=status,
            )

        missing = [name for name in COMMON_PARAMS if name != "RegionId" and not params.get(name)]
        if missing:
            return error("MissingParameter", f"The input parameter {missing[0]} that is mandatory is not supplied.")
        if params["AccessKeyId"] != self.access_key_id:
            return error("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        expected = fake_signature(params, self.access_key_secret, "GET")
        if not hmac.compare_digest(expected, params["Signature"]):
            return error("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        if (stale := timestamp_error(params, self.caller_now())) is not None:
            return error(*stale)
        if params["SignatureNonce"] in self.nonces:
            return error("SignatureNonceUsed", "Specified signature nonce was used already.")
        self.nonces.add(params["SignatureNonce"])
        if params["Version"] != "2016-11-01":
            return error("InvalidVersion", "Specified parameter Version is not valid.")
        if params["Action"] not in ACTIONS:
            return error("InvalidAction.NotFound", "Specified api is not found, please check your url and method.", 404)
        if self.fail_code is not None:
            return error(self.fail_code, f"{self.fail_code} (fake)", self.fail_status)
        if not params.get("DomainName"):
            return error("MissingDomainName", "DomainName is mandatory for this action.")
        if params["DomainName"] != self.domain:
            return error("InvalidDomain.NotFound", "The domain provided does not belong to you.", 404)
        if params["Action"] == "DescribeLiveStreamsOnlineList":
            return self.online_list(params, request_id)
        return self.domain_user_num(request_id)

    def online_list(self, params: dict[str, str], request_id: str) -> web.Response:
        streams = [(a, s) for a, s in self.streams if not params.get("AppName") or a == params["AppName"]]
        size = min(int(params.get("PageSize", "2000")), self.max_page_size)
        page = int(params.get("PageNum", "1"))
        window = streams[(page - 1) * size: page * size]
        items = [
            {"DomainName": self.domain, "AppName": app, "StreamName": name, "PublishTime": "2024-01-01T04:30:00Z"}
            for app, name in window
        ]
        return web.json_response(
            {
                "RequestId": request_id,
                "PageNum": page,
                "PageSize": size,
                "TotalNum": len(streams),
                "TotalPage": max(1, math.ceil(len(streams) / size)),
                "OnlineInfo": {"LiveStreamOnlineInfo": items},
            }
        )

    def domain_user_num(self, request_id: str) -> web.Response:
        items = []
        for name, by_template in self.viewers.items():
            app = next((a for a, s in self.streams if s == name), "live")
            shown = name if self.viewer_stream_naming == "name" else f"rtmp://{self.domain}/{app}/{name}"
            items.append(
                {
                    "StreamName": shown,
                    "Infos": {"Info": [{"UserNumber": n, "TranscodeTemplate": t} for t, n in by_template.items()]},
                }
            )
        return web.json_response(
            {
                "RequestId": request_id,
                "StreamCount": len(items),
                "UserCount": sum(sum(v.values()) for v in self.viewers.values()),
                "OnlineUserInfo": {"LiveStreamOnlineUserNumInfo": items},
            }
        )
