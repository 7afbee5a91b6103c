"""Stream callbacks of Aliyun Live, SRS and nginx-rtmp: auth, live_status in the database, LIVE_STATUS in the room."""

import asyncio
import json
import time
from urllib.parse import urlencode

import pytest

from jiandong.integrations.aliyun_live import callback_signature
from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.api import login
from tests.helpers.content import add_live
from tests.helpers.lives import SECRET, SRS, srs_body
from tests.helpers.realtime import RoomFrames

ALIYUN = "/api/v1/live/callback/aliyun"


NGINX = "/api/v1/live/callback/nginx"


CALLBACK_KEY = "CallbackKey123"
PUSH_DOMAIN = "push.club.example.com"


@pytest.fixture
async def client(make_client):
    return await make_client(live_push_secret=SECRET, counter_flush_interval=3600)


@pytest.fixture
def room(redis_sync, settings):
    """`room(live_id)`: a subscription to the live's room channel; `.frames()` reads what arrived."""
    subscriptions = []

    class Room:
        def __init__(self, live_id: int) -> None:
            self.pubsub = RoomFrames(redis_sync, settings, [live_id])

        def frames(self) -> list[dict]:
            # The callback publishes before it answers, so what it sent is already on its way.
            return [json.loads(data) for _, data in self.pubsub.messages()]

    def subscribe(live_id: int) -> Room:
        r = Room(live_id)
        subscriptions.append(r)
        return r

    yield subscribe
    for r in subscriptions:
        r.pubsub.close()


def live_row(sql, live_id: int) -> dict:
    return sql("SELECT live_status, live_changed_at FROM lives WHERE id = %s", live_id)[0]


def aliyun_query(action: str, stream: str, **extra) -> str:
    params = {"action": action, "ip": "192.0.2.10", "id": stream, "app": PUSH_DOMAIN, "appname": "live",
              "time": str(int(time.time())), "node": "cdnvideocenter01", **extra}
    return f"{ALIYUN}?{urlencode(params)}"


def assert_frame(frames: list[dict], live_id: int, live_status: int) -> None:
    assert len(frames) == 1, frames
    frame = frames[0]
    assert set(frame) == {"type", "room_id", "live_status", "msg_time"}
    assert frame["type"] == "LIVE_STATUS" and frame["room_id"] == str(live_id) and frame["live_status"] == live_status
    assert isinstance(frame["msg_time"], int) and abs(frame["msg_time"] - time.time()) < 60


async def test_aliyun_publish_then_publish_done(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    resp = await client.get(aliyun_query("publish", "s1", token=SECRET, height="720", width="1280"))
    assert resp.status == 200
    assert (await resp.json())["error_code"] == 0
    row = live_row(sql, live_id)
    assert row["live_status"] == 1 and row["live_changed_at"] is not None
    assert_frame(r.frames(), live_id, 1)

    resp = await client.get(aliyun_query("publish_done", "s1", token=SECRET))
    assert resp.status == 200
    assert live_row(sql, live_id)["live_status"] == 2
    assert_frame(r.frames(), live_id, 2)


async def test_aliyun_duplicate_changes_nothing_and_pushes_nothing(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    assert (await client.get(aliyun_query("publish", "s1", token=SECRET))).status == 200
    assert_frame(r.frames(), live_id, 1)
    stamped = live_row(sql, live_id)["live_changed_at"]
    # Aliyun retries a callback it got no answer for: the same event again.
    resp = await client.get(aliyun_query("publish", "s1", token=SECRET))
    assert resp.status == 200
    assert live_row(sql, live_id) == {"live_status": 1, "live_changed_at": stamped}
    assert r.frames() == []


async def test_aliyun_late_retry_of_an_older_event_is_ignored(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    now = int(time.time())
    assert (await client.get(aliyun_query("publish", "s1", token=SECRET, time=str(now)))).status == 200
    assert_frame(r.frames(), live_id, 1)
    # A publish_done of before the restart, retried after it, must not end the stream.
    assert (await client.get(aliyun_query("publish_done", "s1", token=SECRET, time=str(now - 3)))).status == 200
    assert live_row(sql, live_id)["live_status"] == 1
    assert r.frames() == []


async def test_aliyun_signature_header(make_client, sql, room):
    client = await make_client(aliyun_live_callback_key=CALLBACK_KEY)
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    stamp = str(int(time.time()))
    good = {"ALI-LIVE-TIMESTAMP": stamp, "ALI-LIVE-SIGNATURE": callback_signature(PUSH_DOMAIN, stamp, CALLBACK_KEY)}

    bad_headers = [
        {},
        {**good, "ALI-LIVE-SIGNATURE": callback_signature(PUSH_DOMAIN, stamp, "wrong-key")},
        {**good, "ALI-LIVE-TIMESTAMP": str(int(stamp) + 1)},
        # A valid signature of long ago (replayed) is refused.
        {"ALI-LIVE-TIMESTAMP": "1704085200",
         "ALI-LIVE-SIGNATURE": callback_signature(PUSH_DOMAIN, "1704085200", CALLBACK_KEY)},
    ]
    for headers in bad_headers:
        resp = await client.get(aliyun_query("publish", "s1"), headers=headers)
        assert resp.status == 403, headers
        assert (await resp.json())["error_code"] == 10001
    assert live_row(sql, live_id) == {"live_status": 0, "live_changed_at": None}
    assert r.frames() == []

    upper = {**good, "ALI-LIVE-SIGNATURE": good["ALI-LIVE-SIGNATURE"].upper()}
    resp = await client.get(aliyun_query("publish", "s1"), headers=upper)
    assert resp.status == 200
    assert live_row(sql, live_id)["live_status"] == 1
    assert_frame(r.frames(), live_id, 1)


async def test_aliyun_token_in_the_pushers_args(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    resp = await client.get(aliyun_query("publish", "s1", usrargs=f"auth_key=1-0-0-abc&token={SECRET}"))
    assert resp.status == 200
    assert live_row(sql, live_id)["live_status"] == 1
    assert_frame(r.frames(), live_id, 1)


async def test_aliyun_bad_token_changes_nothing(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    for query in (
        aliyun_query("publish", "s1"),
        aliyun_query("publish", "s1", token="wrong"),
        aliyun_query("publish", "s1", usrargs="token=wrong"),
        f"{aliyun_query('publish', 's1')}&token={SECRET}&token=other",
    ):
        resp = await client.get(query)
        assert resp.status == 403, query
        assert (await resp.json())["error_code"] == 10001
    assert live_row(sql, live_id) == {"live_status": 0, "live_changed_at": None}
    assert r.frames() == []


async def test_aliyun_unknown_stream_is_acknowledged_and_ignored(client, sql):
    live_id = add_live(sql, "决赛")
    resp = await client.get(aliyun_query("publish", "nobody", token=SECRET))
    assert resp.status == 200
    assert (await resp.json())["error_code"] == 0
    assert live_row(sql, live_id)["live_status"] == 0
    # Other notifications sharing the URL are acknowledged; a missing stream name is a bad request.
    resp = await client.get(aliyun_query("record_done", "s1", token=SECRET))
    assert resp.status == 200
    resp = await client.get(aliyun_query("publish", "", token=SECRET))
    assert resp.status == 400
    assert (await resp.json())["error_code"] == 99999
    assert live_row(sql, live_id)["live_status"] == 0


async def test_callbacks_refused_when_no_secret_is_configured(make_client, sql, room):
    client = await make_client()
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    # An empty secret must never match an empty token.
    assert (await client.get(aliyun_query("publish", "s1", token=""))).status == 403
    assert (await client.post(SRS, json={"action": "on_publish", "stream": "s1", "param": "?token="})).status == 403
    assert (await client.post(NGINX, data={"call": "publish", "name": "s1", "token": ""})).status == 403
    assert live_row(sql, live_id)["live_status"] == 0
    assert r.frames() == []




async def test_srs_publish_and_unpublish(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    resp = await client.post(SRS, json=srs_body("on_publish", "s1", f"?token={SECRET}&salt=yyy"))
    assert resp.status == 200
    assert await resp.json() == {"code": 0, "msg": "OK"}
    assert live_row(sql, live_id)["live_status"] == 1
    assert_frame(r.frames(), live_id, 1)

    resp = await client.post(SRS, json=srs_body("on_unpublish", "s1"))
    assert resp.status == 200 and (await resp.json())["code"] == 0
    assert live_row(sql, live_id)["live_status"] == 2
    assert_frame(r.frames(), live_id, 2)

    # Again: nothing changes, nothing is pushed, still accepted.
    resp = await client.post(SRS, json=srs_body("on_unpublish", "s1"))
    assert resp.status == 200 and (await resp.json())["code"] == 0
    assert r.frames() == []


async def test_srs_refuses_bad_tokens_and_unknown_streams(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    for param in ("", "?token=wrong", f"?token={SECRET}&token={SECRET}", f"?salt={SECRET}"):
        resp = await client.post(SRS, json=srs_body("on_publish", "s1", param))
        assert resp.status == 403, param
        assert (await resp.json())["error_code"] == 10001
    # The secret in the callback URL does not stand in for the pusher's.
    resp = await client.post(f"{SRS}?token={SECRET}", json=srs_body("on_publish", "s1", ""))
    assert resp.status == 403
    assert live_row(sql, live_id) == {"live_status": 0, "live_changed_at": None}
    assert r.frames() == []

    # Nobody streams under a name the club did not create.
    resp = await client.post(SRS, json=srs_body("on_publish", "unknown"))
    assert resp.status == 404
    assert (await resp.json())["error_code"] == 30005
    resp = await client.post(SRS, json=srs_body("on_unpublish", "unknown"))
    assert resp.status == 200 and (await resp.json())["code"] == 0


async def test_srs_other_hooks_and_bad_bodies(client, sql):
    live_id = add_live(sql, "决赛")
    # Players (on_play) carry no push token and must not be refused.
    resp = await client.post(SRS, json=srs_body("on_play", "s1", ""))
    assert resp.status == 200 and (await resp.json())["code"] == 0
    for body in (b"not json", b"[1, 2]"):
        resp = await client.post(SRS, data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 400
        assert (await resp.json())["error_code"] == 99999
    resp = await client.post(SRS, json=srs_body("on_publish", ""))
    assert resp.status == 400
    assert live_row(sql, live_id)["live_status"] == 0


def nginx_form(call: str, name: str, **args) -> dict:
    return {"app": "live", "flashver": "FMLE/3.0", "swfurl": "", "tcurl": "rtmp://127.0.0.1/live", "pageurl": "",
            "addr": "192.0.2.10", "clientid": "7", "call": call, "name": name, "type": "live", **args}


async def test_nginx_publish_and_publish_done(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    resp = await client.post(NGINX, data=nginx_form("publish", "s1", token=SECRET))
    assert resp.status == 200
    assert live_row(sql, live_id)["live_status"] == 1
    assert_frame(r.frames(), live_id, 1)

    # notify_method get: the same fields in the query string.
    resp = await client.get(f"{NGINX}?{urlencode(nginx_form('publish_done', 's1', token=SECRET))}")
    assert resp.status == 200
    assert live_row(sql, live_id)["live_status"] == 2
    assert_frame(r.frames(), live_id, 2)

    resp = await client.post(NGINX, data=nginx_form("publish_done", "s1", token=SECRET))
    assert resp.status == 200
    assert r.frames() == []


async def test_nginx_refuses_bad_tokens_and_unknown_streams(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    for form in (
        nginx_form("publish", "s1"),
        nginx_form("publish", "s1", token="wrong"),
        [*nginx_form("publish", "s1").items(), ("token", SECRET), ("token", "other")],
    ):
        resp = await client.post(NGINX, data=form)
        assert resp.status == 403
        assert (await resp.json())["error_code"] == 10001
    # With POST only the form counts, not a token written into the notify URL.
    resp = await client.post(f"{NGINX}?token={SECRET}", data=nginx_form("publish", "s1"))
    assert resp.status == 403
    resp = await client.post(NGINX, data=nginx_form("publish_done", "s1", token="wrong"))
    assert resp.status == 403
    assert live_row(sql, live_id) == {"live_status": 0, "live_changed_at": None}
    assert r.frames() == []

    resp = await client.post(NGINX, data=nginx_form("publish", "unknown", token=SECRET))
    assert resp.status == 404
    assert (await resp.json())["error_code"] == 30005
    resp = await client.post(NGINX, data=nginx_form("publish_done", "unknown", token=SECRET))
    assert resp.status == 200
    resp = await client.post(NGINX, data=nginx_form("play", "s1"))
    assert resp.status == 200
    resp = await client.post(NGINX, data=nginx_form("publish", "", token=SECRET))
    assert resp.status == 400
    assert (await resp.json())["error_code"] == 99999
    assert live_row(sql, live_id)["live_status"] == 0


async def test_two_identical_callbacks_at_once_push_one_frame(client, sql, room):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    answers = await asyncio.gather(
        *(client.post(SRS, json=srs_body("on_publish", "s1")) for _ in range(2)),
        client.get(aliyun_query("publish", "s1", token=SECRET)),
        client.post(NGINX, data=nginx_form("publish", "s1", token=SECRET)),
    )
    assert [a.status for a in answers] == [200, 200, 200, 200]
    assert live_row(sql, live_id)["live_status"] == 1
    assert_frame(r.frames(), live_id, 1)


async def test_cached_live_detail_and_list_follow_the_change(client, sql):
    live_id = add_live(sql, "决赛")
    token = await login(client)
    detail = f"/api/v1/competitionlive/{live_id}"
    assert (await (await client.get(detail, headers={"token": token})).json())["live_status"] == 0
    listed = await (await client.get("/api/v1/competition/live", headers={"token": token})).json()
    assert listed["data"] == []  # listed once it starts
    assert (await client.post(SRS, json=srs_body("on_publish", "s1"))).status == 200
    assert (await (await client.get(detail, headers={"token": token})).json())["live_status"] == 1
    listed = await (await client.get("/api/v1/competition/live", headers={"token": token})).json()
    assert listed["data"][0]["live_status"] == 1


async def test_callbacks_are_public_and_in_the_openapi_document(client):
    spec = await (await client.get("/api/v1/openapi.json")).json()
    for path, method in ((ALIYUN, "get"), (SRS, "post"), (NGINX, "post"), (NGINX, "get")):
        op = spec["paths"][path][method]
        assert op["security"] == []
        assert 10003 not in op["x-error-codes"]


def live_publisher(sql, live_id: int) -> tuple[int, str | None]:
    row = sql("SELECT live_status, publisher FROM lives WHERE id = %s", live_id)[0]
    return row["live_status"], row["publisher"]


async def srs_call(client, action: str, stream: str, client_id: object) -> int:
    resp = await client.post(SRS, json={"action": action, "client_id": client_id, "stream": stream, "app": "live",
                                        "param": f"?token={SECRET}", "ip": "203.0.113.5"})
    return resp.status


async def nginx_call(client, call: str, stream: str, clientid: str) -> int:
    fields = {"app": "live", "tcurl": "rtmp://127.0.0.1:1935/live", "addr": "203.0.113.5", "clientid": clientid,
              "call": call, "name": stream, "token": SECRET}
    if call == "publish":
        fields["type"] = "live"
    resp = await client.post(NGINX, data=fields)
    return resp.status


async def aliyun_call(client, action: str, stream: str, ip: str, node: str = "cdnvideocenter01") -> int:
    resp = await client.get(aliyun_query(action, stream, token=SECRET, ip=ip, node=node))
    return resp.status


@pytest.mark.parametrize(
    "kind, first, second",
    [("nginx", "11", "12"), ("srs", "341w361a", "341w361b"), ("srs", 7, 8),
     ("aliyun", "192.0.2.10", "198.51.100.7")],
)
async def test_a_second_publishers_stop_does_not_end_the_live(client, sql, room, kind, first, second):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    call = {"nginx": nginx_call, "srs": srs_call, "aliyun": aliyun_call}[kind]
    start, stop = {"nginx": ("publish", "publish_done"), "srs": ("on_publish", "on_unpublish"),
                   "aliyun": ("publish", "publish_done")}[kind]
    assert await call(client, start, "s1", first) == 200
    status, session = live_publisher(sql, live_id)
    assert status == 1 and session is not None and session.startswith(f"{kind}:") and str(first) in session
    assert_frame(r.frames(), live_id, 1)
    # A second publisher of the same stream gets through on_publish, is refused as "already
    # publishing" by the streaming server, and then sends its stop.
    assert await call(client, start, "s1", second) == 200
    assert await call(client, stop, "s1", second) == 200
    assert live_publisher(sql, live_id) == (1, session)
    assert r.frames() == []
    # The first session's own stop ends it.
    assert await call(client, stop, "s1", first) == 200
    assert live_publisher(sql, live_id) == (2, None)
    assert_frame(r.frames(), live_id, 2)
    # A new session may start it again; then its stop is the one that counts.
    assert await call(client, start, "s1", second) == 200
    assert live_publisher(sql, live_id)[0] == 1
    assert await call(client, stop, "s1", first) == 200
    assert live_publisher(sql, live_id)[0] == 1
    assert await call(client, stop, "s1", second) == 200
    assert live_publisher(sql, live_id) == (2, None)


async def test_a_stop_that_names_no_session_ends_the_live(client, sql):
    live_id = add_live(sql, "决赛")
    assert await nginx_call(client, "publish", "s1", "11") == 200
    resp = await client.post(NGINX, data={"call": "publish_done", "name": "s1", "token": SECRET})
    assert resp.status == 200
    assert live_publisher(sql, live_id) == (2, None)
@pytest.mark.parametrize(
    "body",
    [
        {"action": {}},
        {"action": ["on_publish"], "stream": "s1", "param": f"?token={SECRET}"},
        {"action": "on_publish", "stream": {"name": "s1"}, "param": f"?token={SECRET}"},
        {"action": "on_publish", "stream": "s1", "param": 12345},
        {"action": "on_unpublish", "stream": 7, "param": f"?token={SECRET}"},
    ],
)
async def test_srs_wrong_json_shapes_are_400(client, sql, body):
    live_id = add_live(sql, "决赛")
    resp = await client.post(SRS, json=body)
    assert resp.status == 400
    assert (await resp.json())["error_code"] == 99999
    assert live_row(sql, live_id) == {"live_status": 0, "live_changed_at": None}


async def test_callback_fields_lose_their_control_characters(client, sql, room, caplog):
    live_id = add_live(sql, "决赛")
    r = room(live_id)
    # A stream name with a NUL or a line break is the stream's name once they are gone.
    resp = await client.post(SRS, json=srs_body("on_publish", "s\x001\n"))
    assert resp.status == 200, await resp.text()
    assert live_row(sql, live_id)["live_status"] == 1
    assert_frame(r.frames(), live_id, 1)
    resp = await client.post(SRS, json=srs_body("on_unpublish", "s1\r\x00"))
    assert resp.status == 200
    assert live_row(sql, live_id)["live_status"] == 2
    # The same through nginx-rtmp's form fields.
    resp = await client.post(NGINX, data=nginx_form("publish", "s\x001", token=SECRET))
    assert resp.status == 200 and live_row(sql, live_id)["live_status"] == 1
    resp = await client.post(NGINX, data=nginx_form("publish_done", "s1\r\x00", token=SECRET))
    assert resp.status == 200
    assert live_row(sql, live_id)["live_status"] == 2
    # A refusal is logged on one line, whatever the fields held.
    resp = await client.post(SRS, json={**srs_body("on_publish", "s1", "?token=x"), "ip": "1.2.3.4\nFORGED LINE"})
    assert resp.status == 403
    assert not [rec for rec in caplog.records if "\n" in rec.getMessage()]


async def test_control_characters_in_a_stream_servers_fields_are_removed_as_documented(client, sql):
    """A callback's text fields take any string (their control characters are removed, not refused), and
    the OpenAPI document says so instead of a pattern the server does not hold them to."""
    live_id = add_live(sql, "决赛")
    resp = await client.post(NGINX, data=nginx_form("publish", "s\x001", app="li\x00ve\x07", token=SECRET))
    assert resp.status == 200
    assert live_row(sql, live_id)["live_status"] == 1
    spec = await (await client.get("/api/v1/openapi.json")).json()
    body = spec["paths"][NGINX]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    for name in ("call", "name", "clientid", "app"):
        field = body["properties"][name]
        assert "pattern" not in field and "控制字符会被去掉" in field["description"]
    assert "pattern" in body["properties"]["token"]
    # In a query string a NUL is refused before any handler: there the pattern stays.
    query = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/live/callback/aliyun"]["get"]["parameters"]}
    assert query["id"]["pattern"] == "^[^\\x00]*$"
    resp = await client.get("/api/v1/live/callback/aliyun?action=publish&id=s%001")
    assert resp.status == 400 and (await resp.json())["msg"] == "参数错误: 请求地址含有非法字符"


@pytest.mark.parametrize(
    "kind, first, second",
    [("nginx", "11", "12"), ("srs", "341w361a", "341w361b"), ("aliyun", "192.0.2.10", "198.51.100.7")],
)
async def test_a_live_set_live_by_hand_is_kept_by_its_first_publisher(client, sql, room, kind, first, second):
    """Staff (or the demo) put a live on with no session recorded: the first session to publish it
    becomes its publisher, and a refused second publisher's publish and stop do not end it."""
    live_id = add_live(sql, "决赛")
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    resp = await post_form(client, f"/admin/lives/{live_id}/status", {"live_status": "1"},
                           token_from=f"/admin/lives/{live_id}")
    assert resp.status == 302
    assert live_publisher(sql, live_id) == (1, None)
    # A minute ago: Aliyun stamps its events in whole seconds, and an event older than the last change is
    # a late retry (ignored).
    sql("UPDATE lives SET live_changed_at = live_changed_at - interval '1 minute' WHERE id = %s", live_id)
    r = room(live_id)
    call = {"nginx": nginx_call, "srs": srs_call, "aliyun": aliyun_call}[kind]
    start, stop = {"nginx": ("publish", "publish_done"), "srs": ("on_publish", "on_unpublish"),
                   "aliyun": ("publish", "publish_done")}[kind]
    stamped = live_row(sql, live_id)["live_changed_at"]
    assert await call(client, start, "s1", first) == 200
    status, session = live_publisher(sql, live_id)
    assert status == 1 and session is not None and str(first) in session
    # Still the same live: no new frame, no new stamp.
    assert r.frames() == [] and live_row(sql, live_id)["live_changed_at"] == stamped
    assert await call(client, start, "s1", second) == 200
    assert await call(client, stop, "s1", second) == 200
    assert live_publisher(sql, live_id) == (1, session)
    assert r.frames() == []
    assert await call(client, stop, "s1", first) == 200
    assert live_publisher(sql, live_id) == (2, None)
    assert_frame(r.frames(), live_id, 2)
