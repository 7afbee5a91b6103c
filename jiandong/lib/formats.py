"""How values look in the H5 API: times, money, empty text and flags (DESIGN.md §3)."""

from __future__ import annotations

import datetime as dt
import typing

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def fmt_time(value: dt.datetime | dt.date | None, tz: dt.tzinfo | None = None) -> str:
    """'YYYY-MM-DD HH:MM:SS' in the club's time zone; "" for no time.

    Database connections run in the club's time zone, so values read from PostgreSQL are already
    local; pass `tz` for datetimes made in Python.
    """
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if tz is not None and value.tzinfo is not None:
            value = value.astimezone(tz)
        return value.strftime(TIME_FORMAT)
    return value.strftime("%Y-%m-%d")


def fmt_date(value: dt.date | None) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else ""


def fmt_money(fen: int | None) -> str:
    """Integer fen as yuan with two decimals: 19900 -> "199.00"."""
    if fen is None:
        return "0.00"
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{yuan}.{cents:02d}"


def text(value: typing.Any) -> str:
    """Empty text is "", never null (the pages test !== "")."""
    return "" if value is None else str(value)


def flag(value: typing.Any) -> int:
    return 1 if value else 0


SEX_LABELS = {0: "保密", 1: "男", 2: "女"}


def sex_label(value: int | None) -> str:
    return SEX_LABELS.get(value or 0, "保密")
