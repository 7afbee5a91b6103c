"""Reconciling live_status with Aliyun Live's online list: against the fake OpenAPI, with DB and room checks."""

import datetime as dt
import json

import pytest

from jiandong.integrations.aliyun import AliyunError
from jiandong.keys import live_status_task_key
from jiandong.tasks.live_status import reconcile
from tests.fakes.aliyun_live import FakeAliyunLive
from tests.helpers.api import login
from tests.helpers.lives import add_stream, aliyun_settings, statuses
from tests.helpers.realtime import RoomFrames
from tests.helpers.waiting import until


@pytest.fixture
async def fake_live(aiohttp_server):
    fake = FakeAliyunLive()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/"))
    return fake




@pytest.fixture
def rooms(redis_sync, settings):
    """A subscription to the room channels of the first lives; `read()` gives the frames that arrived, by room id."""
    frames = RoomFrames(redis_sync, settings, range(1, 21))

    def read() -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for _, data in frames.messages():
            frame = json.loads(data)
            assert frame["type"] == "LIVE_STATUS"
            found.setdefault(frame["room_id"], []).append(frame["live_status"])
        return found

    yield read
    frames.close()


async def test_online_streams_go_live_and_absent_ones_end(make_client, fake_live, sql, rooms):
    client = await make_client(**aliyun_settings(fake_live))
    upcoming = add_stream(sql, "s1", 0)
    vanished = add_stream(sql, "s2", 1)
    restarted = add_stream(sql, "s3", 2)
    just_started = add_stream(sql, "s4", 1, changed_at=None)
    sql("UPDATE lives SET live_changed_at = now() WHERE id = %s", just_started)
    add_stream(sql, "s5", 0)
    fake_live.streams = [("live", "s1"), ("live", "s3"), ("live", "stranger")]

    assert await reconcile(client.app) == {"s1": 1, "s2": 2, "s3": 1}
    # s4 changed moments ago (its stream may not be listed yet); s5 is neither live nor listed.
    assert statuses(sql) == {"s1": 1, "s2": 2, "s3": 1, "s4": 1, "s5": 0}
    assert rooms() == {str(upcoming): [1], str(vanished): [2], str(restarted): [1]}
    (call,) = fake_live.calls("DescribeLiveStreamsOnlineList")
    assert call["DomainName"] == fake_live.domain and call["Version"] == "2016-11-01"
    assert call["PageNum"] == "1" and "AppName" not in call

    # Nothing new: nothing changes, nothing is pushed.
    assert await reconcile(client.app) == {}
    assert rooms() == {}


async def test_failed_call_changes_nothing(make_client, fake_live, sql, rooms):
    client = await make_client(**aliyun_settings(fake_live))
    add_stream(sql, "s1", 1)
    add_stream(sql, "s2", 0)
    fake_live.streams = [("live", "s2")]
    for fail in ("code", "status"):
        fake_live.fail_code, fake_live.http_status = ("Throttling", None) if fail == "code" else (None, 500)
        with pytest.raises(AliyunError):
            await reconcile(client.app)
    # An outage must not end every stream.
    assert statuses(sql) == {"s1": 1, "s2": 0}
    assert rooms() == {}


async def test_every_page_of_the_online_list_is_read(make_client, fake_live, sql):
    client = await make_client(**aliyun_settings(fake_live))
    fake_live.max_page_size = 2
    fake_live.streams = [("live", f"s{i}") for i in range(1, 6)]
    for i in range(1, 6):
        add_stream(sql, f"s{i}", 0)
    assert await reconcile(client.app) == {f"s{i}": 1 for i in range(1, 6)}
    assert [c["PageNum"] for c in fake_live.calls("DescribeLiveStreamsOnlineList")] == ["1", "2", "3"]


async def test_app_name_limits_the_tracked_lives(make_client, fake_live, sql):
    client = await make_client(**aliyun_settings(fake_live, aliyun_live_app_name="club"))
    add_stream(sql, "ours", 0, app_name="club")
    add_stream(sql, "gone", 1, app_name="club")
    add_stream(sql, "elsewhere", 1, app_name="other")
    fake_live.streams = [("club", "ours"), ("other", "elsewhere")]
    assert await reconcile(client.app) == {"ours": 1, "gone": 2}
    assert statuses(sql) == {"ours": 1, "gone": 2, "elsewhere": 1}
    assert fake_live.calls("DescribeLiveStreamsOnlineList")[0]["AppName"] == "club"


async def test_the_background_poll_runs_under_a_lease(make_client, fake_live, sql, redis_sync, settings):
    client = await make_client(**aliyun_settings(fake_live, live_poll_interval=0.05))
    live_id = add_stream(sql, "s1", 0)
    fake_live.streams = [("live", "s1")]
    await until(lambda: sql("SELECT live_status FROM lives WHERE id = %s", live_id)[0]["live_status"] == 1,
                "the poll")
    assert redis_sync.get(f"{settings.redis_prefix}lease:live_status")
    assert not client.app[live_status_task_key].done()


async def test_a_poll_refused_for_its_timestamp_changes_nothing_until_the_clocks_agree(
    make_client, fake_live, sql, caplog
):
    # Aliyun's clock 20 minutes behind ours: every call is refused as InvalidTimeStamp.Expired.
    fake_live.skew = dt.timedelta(minutes=-20)
    client = await make_client(**aliyun_settings(fake_live, live_poll_interval=0.05))
    token = await login(client)
    live_id = add_stream(sql, "s1", 0)
    fake_live.streams = [("live", "s1")]
    await until(lambda: len(fake_live.calls("DescribeLiveStreamsOnlineList")) >= 3, "three refused polls")
    assert statuses(sql) == {"s1": 0}
    resp = await client.get(f"/api/v1/competitionlive/{live_id}", headers={"token": token})
    assert resp.status == 200 and (await resp.json())["live_status"] == 0
    assert "InvalidTimeStamp.Expired" in caplog.text
    fake_live.skew = dt.timedelta(minutes=-14)
    await until(lambda: statuses(sql) == {"s1": 1}, "the poll to apply the online list")
    assert not client.app[live_status_task_key].done()


async def test_no_poll_without_aliyun_live(client, sql):
    add_stream(sql, "s1", 1)
    assert client.app[live_status_task_key] is None
    assert await reconcile(client.app) == {}
    assert statuses(sql) == {"s1": 1}
