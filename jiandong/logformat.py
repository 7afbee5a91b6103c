"""How a log line looks: the time with its UTC offset, the level, the process when there are several, the logger."""

from __future__ import annotations

import datetime as dt
import logging


def iso_time(record: logging.LogRecord) -> str:
    """The record's local time to the millisecond, with its offset: 2026-11-30T18:51:56.518+08:00."""
    return dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> [<process>] <logger>: <message>`; the process ("main", "worker 2") only with --workers."""

    def __init__(self, process: str | None = None) -> None:
        where = f"[{process}] " if process else ""
        super().__init__(f"%(asctime)s %(levelname)s {where}%(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return iso_time(record)
