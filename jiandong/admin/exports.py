"""Lists exported as files: CSV that Excel opens as UTF-8 (with a BOM) and XLSX (xlsxwriter)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import typing
from urllib.parse import quote

import xlsxwriter
from aiohttp import web

from jiandong.lib import formats
from jiandong.lib.formulas import guarded

# (header, function of a row giving the cell's value)
ExportColumn = tuple[str, typing.Callable[[typing.Any], typing.Any]]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Fen(int):
    """An amount in fen that exports as yuan: "219.00" in CSV, the number 219 shown as 219.00 in XLSX."""


def _cell(value: typing.Any) -> typing.Any:
    if isinstance(value, str):
        return guarded(value)
    return "" if value is None else value


def table(columns: list[ExportColumn], rows: typing.Iterable[typing.Any]) -> list[list[typing.Any]]:
    """The header and the rows as cell values."""
    return [[header for header, _ in columns]] + [[_cell(get(row)) for _, get in columns] for row in rows]


def csv_bytes(cells: list[list[typing.Any]]) -> bytes:
    """UTF-8 with a BOM (Excel reads a BOM-less file in the system's code page), CRLF line ends."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([[_csv_text(v) for v in row] for row in cells])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _csv_text(value: typing.Any) -> typing.Any:
    # The same texts the console pages show: yuan with two decimals, 'YYYY-MM-DD HH:MM:SS'.
    if isinstance(value, Fen):
        return formats.fmt_money(value)
    if isinstance(value, dt.date):
        return formats.fmt_time(value)
    return value


def xlsx_bytes(cells: list[list[typing.Any]], sheet: str) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    ws = book.add_worksheet(sheet)
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "0.00"})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    for r, row in enumerate(cells):
        for c, value in enumerate(row):
            if isinstance(value, Fen):
                ws.write_number(r, c, value / 100, money)
            elif isinstance(value, dt.datetime):
                # Values read from PostgreSQL are already in the club's time zone; Excel has none.
                ws.write_datetime(r, c, value.replace(tzinfo=None), when)
            elif isinstance(value, dt.date):
                ws.write_datetime(r, c, value, day)
            else:
                ws.write(r, c, value, bold if r == 0 else None)
    ws.freeze_panes(1, 0)
    book.close()
    return out.getvalue()


def sheet_download(fmt: str, cells: list[list[typing.Any]], name: str, sheet: str, tz: dt.tzinfo) -> web.Response:
    """A list's export: the cells as `<name>-<local time>.csv` (fmt "csv") or `.xlsx` with sheet `sheet`."""
    stamp = dt.datetime.now(tz).strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        return download(csv_bytes(cells), f"{name}-{stamp}.csv", "text/csv")
    return download(xlsx_bytes(cells, sheet), f"{name}-{stamp}.xlsx", XLSX_TYPE)


def download(body: bytes, filename: str, content_type: str) -> web.Response:
    disposition = f"attachment; filename=\"{filename.encode('ascii', 'replace').decode()}\"; " \
                  f"filename*=UTF-8''{quote(filename)}"
    return web.Response(body=body, content_type=content_type, charset="utf-8" if content_type == "text/csv" else None,
                        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})
