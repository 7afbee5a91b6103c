"""Lives and the callbacks and polls that change their status."""

from __future__ import annotations

from tests.fakes.aliyun_live import FakeAliyunLive

SRS = "/api/v1/live/callback/srs"


SECRET = "push-secret-123"


def srs_body(action: str, stream: str, param: str = f"?token={SECRET}") -> dict:
    return {"server_id": "vid-0xk989d", "action": action, "client_id": "341w361a", "ip": "192.0.2.10",
            "vhost": "__defaultVhost__", "app": "live", "tcUrl": "rtmp://127.0.0.1:1935/live?vhost=__defaultVhost__",
            "stream": stream, "param": param, "stream_url": f"video.test.com/live/{stream}", "stream_id": "vid-124q9y3"}


LONG_AGO = "2024-01-01 10:00:00+08"


def aliyun_settings(fake: FakeAliyunLive, **extra) -> dict:
    # No background poll unless a test asks for one: the others poll by calling reconcile.
    return {
        "aliyun_access_key_id": fake.access_key_id,
        "aliyun_access_key_secret": fake.access_key_secret,
        "aliyun_live_url": fake.url,
        "aliyun_live_domain": fake.domain,
        "live_poll_interval": 3600,
        "counter_flush_interval": 3600,
        **extra,
    }


def add_stream(sql, stream: str, live_status: int, changed_at: str | None = LONG_AGO, app_name: str = "live") -> int:
    return sql(
        "INSERT INTO lives (title, stream_name, app_name, live_status, live_changed_at, play_rtmp, plug_flow)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'rtmp://push.example.com/x?auth_key=SECRET') RETURNING id",
        f"直播 {stream}", stream, app_name, live_status, changed_at, f"rtmp://play.example.com/live/{stream}",
    )[0]["id"]


def statuses(sql) -> dict[str, int]:
    return {r["stream_name"]: r["live_status"] for r in sql("SELECT stream_name, live_status FROM lives")}
