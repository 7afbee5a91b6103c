"""The one place a live stream's live_status changes: database, content caches and the room, together.

Callbacks (api/live_callbacks.py) and the Aliyun reconciliation (tasks/live_status.py) both come
here. The change is one conditional UPDATE, so a duplicate callback, a retry or two processes
reporting the same change at once change the row once and push one LIVE_STATUS frame.

An event may carry the time it happened (Aliyun's callback `time`, the start of a poll): it is
then applied only if nothing newer was recorded, so a late retry of "stopped" cannot end a
stream that has restarted since.

An event may also name its publishing session (`publisher`). The session that makes a live go
live is recorded, and a stop from any other session is ignored: nginx-rtmp and SRS let a second
publisher of the same stream through on_publish, refuse it as "already publishing", and then send
its stop, which must not end the stream the first one is still sending. A second publish while
live changes nothing (the first session keeps the live). A live that is on with no session recorded
(set live by hand, or loaded live by the demo) is taken by the first session that publishes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import typing

from ..keys import content_cache_key, pg_key, realtime_key, redis_key, settings_key
from ..lib import encoding
from ..store import db
from ..store.kv import publish
from ..store.room_channels import room_channel, room_text

logger = logging.getLogger(__name__)

NOT_STARTED, LIVE, ENDED = 0, 1, 2
LIVE_STATUSES = (NOT_STARTED, LIVE, ENDED)
FRAME_TYPE = "LIVE_STATUS"

# One statement: which live has this stream (none = unknown) and whether this event changed its status.
# The CTE's SELECT sees the row as it was; the UPDATE's RETURNING says whether it was touched.
# A publish to a live that is on with no session recorded (set live by hand, or by the demo, or by the
# Aliyun online-list check) only records its session: the first session to publish it becomes its
# publisher, so a later session's publish takes nothing over and that session's stop ends nothing.
# `other_publisher`: the session the live was recorded with when the event names a different one.
SET_STATUS_SQL = """
WITH target AS (
    SELECT id, live_status, publisher FROM lives WHERE stream_name = %(stream)s
), changed AS (
    UPDATE lives
    SET live_status = %(status)s,
        live_changed_at = CASE WHEN live_status = %(status)s THEN live_changed_at
                               ELSE LEAST(COALESCE(%(at)s, now()), now()) END,
        publisher = CASE WHEN %(status)s <> 1 THEN NULL
                         WHEN live_status = 1 THEN COALESCE(publisher, %(publisher)s)
                         ELSE %(publisher)s END
    WHERE stream_name = %(stream)s
      AND ((live_status <> %(status)s
            AND (%(at)s::timestamptz IS NULL OR live_changed_at IS NULL OR live_changed_at <= %(at)s)
            AND (%(status)s = 1 OR %(publisher)s::text IS NULL OR publisher IS NULL OR publisher = %(publisher)s))
           -- a claim changes no status (nor its stamp): whenever its event happened, the session publishes now
           OR (%(status)s = 1 AND live_status = 1 AND publisher IS NULL AND %(publisher)s::text IS NOT NULL))
    RETURNING id
)
SELECT target.id, changed.id IS NOT NULL AND target.live_status <> %(status)s AS changed,
       changed.id IS NOT NULL AND target.live_status = %(status)s AS claimed,
       CASE WHEN target.publisher <> %(publisher)s THEN target.publisher END AS other_publisher
FROM target LEFT JOIN changed ON changed.id = target.id
"""


@dataclasses.dataclass(frozen=True)
class StatusChange:
    live_id: int | None  # None: no live has this stream name
    changed: bool

    @property
    def known(self) -> bool:
        return self.live_id is not None


def status_frame(live_id: int, live_status: int, msg_time: int | None = None) -> str:
    """The LIVE_STATUS frame pushed to a room, as the text every socket of the room receives."""
    return encoding.dumps_str(
        {"type": FRAME_TYPE, "room_id": room_text(live_id), "live_status": live_status,
         "msg_time": int(time.time()) if msg_time is None else msg_time}
    )


async def set_live_status(
    state: typing.Mapping[typing.Any, typing.Any],
    stream_name: str,
    live_status: int,
    *,
    at: dt.datetime | None = None,
    publisher: str | None = None,
    source: str = "",
) -> StatusChange:
    """Move the live of `stream_name` to `live_status` unless it is there already (or a newer event was
    seen, or the event is a stop from another session than the one that made it live).

    `state` is the app or `request.config_dict`; `publisher` is the streaming server's id of the
    publishing session, None when the event names none. On a change: stamp live_changed_at, drop
    cached lives in every process and push LIVE_STATUS to the room (room id = live id).
    """
    if live_status not in LIVE_STATUSES:
        raise ValueError(f"live_status must be one of {LIVE_STATUSES}")
    row = await db.fetchone(
        state[pg_key], SET_STATUS_SQL,
        {"stream": stream_name, "status": live_status, "at": at, "publisher": publisher},
    )
    if row is None:
        return StatusChange(None, False)
    result = StatusChange(row["id"], bool(row["changed"]))
    if row["claimed"]:
        logger.info("live %s (stream %s) was live with no session recorded: session %s publishes it",
                    result.live_id, stream_name, publisher)
    if not result.changed:
        if live_status != LIVE and row["other_publisher"] is not None:
            logger.info("live %s (stream %s): %s from session %s ignored; session %s publishes it",
                        result.live_id, stream_name, source or "stop", publisher, row["other_publisher"])
        return result
    logger.info("live %s (stream %s) is now %s (%s)", result.live_id, stream_name, live_status, source or "-")
    # The row is changed already: a failure below only delays what readers see, so it is logged.
    try:
        await state[content_cache_key].invalidate("live")
    except Exception:
        logger.warning("could not announce the status change of live %s", result.live_id, exc_info=True)
    frame = status_frame(row["id"], live_status).encode()
    try:
        realtime = state.get(realtime_key)
        if realtime is not None:
            await realtime.publish_frame(row["id"], frame)
        else:
            await publish(state[redis_key], room_channel(state[settings_key], row["id"]), frame)
    except Exception:
        logger.warning("could not push the status of live %s to its room", result.live_id, exc_info=True)
    return result
