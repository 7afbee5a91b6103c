"""Rosters in: a sheet of player cards (CSV or XLSX) read, checked against the club's data, and written in one
transaction with one audit entry. The cells' own rules (name, number, phone ...) are the card form's: the
console checks them before these checks run."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
import typing
import zipfile

import aiopg

from ..keys import pg_key
from ..lib.formulas import unguarded
from ..store import db
from . import audit
from .content_cache import user_changed
from .teams import changed as teams_changed
from .teams import in_other_team

# The import's columns (the export's first ones, so an export reads back in). Found by name, in any order.
HEADERS = ("姓名", "球衣号码", "手机", "性别", "生日", "身高", "体重", "位置", "球队", "入队日期")
REQUIRED_HEADER = "姓名"
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 10_000
# Columns read from a sheet: a file of a thousand empty columns is not read cell by cell.
MAX_COLUMNS = 60
XLSX_MAGIC = b"PK\x03\x04"
CARD_KEYS = ("cn_name", "number", "mobile", "sex", "birthday", "stature", "weight", "position")


class SheetRefused(ValueError):
    """The file cannot be read as an import (its message says why, for the person who sent it)."""


@dataclasses.dataclass
class SheetRow:
    """A data row of the sheet: its row number as a spreadsheet shows it, and its cells by column name."""

    line: int
    cells: dict[str, str]


@dataclasses.dataclass
class Entry:
    """A row made into a card's values (`card`, keys CARD_KEYS), the team to join (by name) and since when;
    `errors`: what the cells' own rules found."""

    line: int
    card: dict[str, typing.Any]
    team: str = ""
    joined: dt.date | None = None
    errors: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Verdict:
    """What the club's data says of a row: why it cannot be written, or what writing it does."""

    errors: list[str] = dataclasses.field(default_factory=list)
    player_id: int | None = None  # the card matched by phone, updated; None: a new card
    team_id: int | None = None  # the team joined; None: no team to join (none named, or already in it)


@dataclasses.dataclass
class Outcome:
    created: int
    updated: int
    joined: int
    skipped: list[tuple[int, list[str]]]  # rows not written, with why

    @property
    def counts(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "joined": self.joined,
                "skipped": len(self.skipped)}


# -- reading ----------------------------------------------------------------------------------------

def parse(data: bytes) -> list[SheetRow]:
    """The data rows of a CSV (UTF-8 with or without BOM, or the GB18030 Excel saves) or an XLSX (its first
    sheet); the header row names the columns. SheetRefused for anything else."""
    if not data.strip():
        raise SheetRefused("文件是空的")
    if len(data) > MAX_BYTES:
        raise SheetRefused(f"文件过大：不能超过 {MAX_BYTES // 1024 // 1024} MiB")
    lines = _xlsx_lines(data) if data.startswith(XLSX_MAGIC) else _csv_lines(data)
    header: list[str] | None = None
    rows: list[SheetRow] = []
    for number, values in lines:
        texts = [_text(v) for v in values[:MAX_COLUMNS]]
        if not any(texts):
            continue
        if header is None:
            header = texts
            if REQUIRED_HEADER not in header:
                raise SheetRefused("第一行应为表头，且须有「姓名」列：请使用下载的模板")
            continue
        if len(rows) >= MAX_ROWS:
            raise SheetRefused(f"行数过多：一次最多导入 {MAX_ROWS} 行，请分成几个文件")
        cells = {name: "" for name in HEADERS}
        for name, text in zip(header, texts, strict=False):
            # The first column of a name counts; columns not of the import are left out.
            if name in cells and not cells[name]:
                cells[name] = text
        rows.append(SheetRow(number, cells))
    if header is None:
        raise SheetRefused("文件是空的")
    return rows


def _text(value: typing.Any) -> str:
    """A cell as the text typed: 23.0 from a number cell is "23", a date cell is YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    # An export of ours guarded a formula-like text with an apostrophe: the value is the text after it.
    return unguarded(str(value).strip())


def _csv_lines(data: bytes) -> typing.Iterator[tuple[int, list[typing.Any]]]:
    if b"\x00" in data:
        raise SheetRefused("无法识别的文件：请上传 CSV 或 XLSX 表格")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on a Chinese Windows saves "CSV" in the system's code page.
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise SheetRefused("无法识别的文件编码：请把 CSV 存为 UTF-8") from None
    try:
        yield from enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
    except csv.Error:
        raise SheetRefused("无法识别的 CSV 文件") from None


# A formula cell with no value kept from its last calculation: <c ...><f>...</f></c>, <f .../>, <v/> or <v></v>.
_UNCALCULATED = re.compile(rb"<c\b[^>]*>\s*<f\b[^>]*(?:/>|>[^<]*</f>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>")


# Read in chunks (a sheet expands to many times its zipped size), each searched with the end of the one before:
# a cell's XML (a formula is at most 8,192 characters) never spans more than that.
_CHUNK, _OVERLAP = 1 << 20, 1 << 15


def _uncalculated_formula(data: bytes, sheet_path: str) -> bool:
    """Whether the sheet has a formula cell whose value was never calculated (openpyxl reads it as empty)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(sheet_path.lstrip("/")) as xml:
            tail = b""
            while chunk := xml.read(_CHUNK):
                window = tail + chunk
                if _UNCALCULATED.search(window):
                    return True
                tail = window[-_OVERLAP:]
    except (KeyError, zipfile.BadZipFile, OSError):
        return False
    return False


def _xlsx_lines(data: bytes) -> typing.Iterator[tuple[int, list[typing.Any]]]:
    import openpyxl  # only the import reads workbooks

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # a damaged or foreign zip raises any of many kinds: each is "not a workbook"
        raise SheetRefused("无法识别的 XLSX 文件：请用 Excel 或 WPS 另存为 .xlsx 后再上传") from None
    try:
        if not book.worksheets:
            raise SheetRefused("表格里没有工作表")
        sheet = book.worksheets[0]
        if _uncalculated_formula(data, getattr(sheet, "_worksheet_path", "")):
            # Read as they are, such cells are empty: a name made by a formula would be refused as missing.
            raise SheetRefused("表格里有公式没有计算结果（多见于程序生成的文件）：请用 Excel 或 WPS 打开后保存一次，"
                               "或把公式改成数值，再上传")
        try:
            for number, values in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1):
                yield number, list(values)
        except SheetRefused:
            raise
        except Exception:  # a broken sheet inside a readable zip
            raise SheetRefused("无法读取 XLSX 的第一个工作表") from None
    finally:
        book.close()


# -- checking ---------------------------------------------------------------------------------------

async def check(cur: aiopg.Cursor, entries: typing.Sequence[Entry], lock: bool = False) -> dict[int, Verdict]:
    """Each row (by line) judged against the club's data and the rows above it: unknown team, a card matched
    by phone already in another team, a number taken in the team (by a member or a row above), a phone or a
    whole row given twice. Rows with errors of their own are judged no further. `lock`: in the commit's
    transaction, the matched cards are locked until it ends."""
    good = [e for e in entries if not e.errors]
    names = sorted({e.team for e in good if e.team})
    phones = sorted({e.card["mobile"] for e in good if e.card["mobile"]})
    await cur.execute("SELECT id, name FROM teams WHERE name = ANY(%s)", (names,))
    team_ids = {r["name"]: r["id"] for r in await cur.fetchall()}
    await cur.execute(
        """SELECT p.id, p.mobile, tm.team_id, t.name AS team FROM players p
           LEFT JOIN team_members tm ON tm.player_id = p.id AND tm.left_at IS NULL
           LEFT JOIN teams t ON t.id = tm.team_id
           WHERE p.mobile = ANY(%s) ORDER BY p.id""" + (" FOR UPDATE OF p" if lock else ""), (phones,))
    cards: dict[str, list[db.Row]] = {}
    for r in await cur.fetchall():
        cards.setdefault(r["mobile"], []).append(r)
    teams_seen = {*team_ids.values(), *(r["team_id"] for rs in cards.values() for r in rs if r["team_id"])}
    await cur.execute(
        """SELECT tm.team_id, p.number, p.id, p.cn_name FROM team_members tm JOIN players p ON p.id = tm.player_id
           WHERE tm.left_at IS NULL AND tm.team_id = ANY(%s) AND p.number <> ''""", (sorted(teams_seen),))
    numbers: dict[tuple[int, str], db.Row] = {(r["team_id"], r["number"]): r for r in await cur.fetchall()}

    verdicts: dict[int, Verdict] = {}
    phone_lines: dict[str, int] = {}
    row_lines: dict[tuple[typing.Any, ...], int] = {}
    number_lines: dict[tuple[int, str], int] = {}
    for e in good:
        v = verdicts[e.line] = Verdict()
        phone = e.card["mobile"]
        same = (*(e.card[k] for k in CARD_KEYS), e.team)
        if phone and phone in phone_lines:
            v.errors.append(f"手机号与第 {phone_lines[phone]} 行重复")
            continue
        if not phone and same in row_lines:
            v.errors.append(f"与第 {row_lines[same]} 行重复")
            continue
        current_team: tuple[int, str] | None = None  # (id, name) of the matched card's team
        if phone:
            matched = cards.get(phone, [])
            if len(matched) > 1:
                v.errors.append("该手机号对应多张球员卡（" + "、".join(f"#{r['id']}" for r in matched)
                                + "），请先在球员卡页面处理")
            elif matched:
                v.player_id = matched[0]["id"]
                if matched[0]["team_id"]:
                    current_team = (matched[0]["team_id"], matched[0]["team"])
        team_id = None
        if e.team:
            team_id = team_ids.get(e.team)
            if team_id is None:
                v.errors.append(f"球队「{e.team}」不存在")
            elif current_team and current_team[0] != team_id:
                v.errors.append(in_other_team(current_team[1]))
            elif not current_team:
                v.team_id = team_id
        # The number is checked in the team the player will be in: the one named, or the card's own.
        in_team, team_name = (team_id, e.team) if e.team else current_team or (None, "")
        number = e.card["number"]
        if in_team and number:
            key = (in_team, number)
            holder = numbers.get(key)
            if key in number_lines:
                v.errors.append(f"球衣号码 {number} 与第 {number_lines[key]} 行重复（同一球队）")
            elif holder is not None and holder["id"] != v.player_id:
                v.errors.append(f"球衣号码 {number} 在「{team_name}」已被 {holder['cn_name']} 使用")
        if v.errors:
            continue
        if phone:
            phone_lines[phone] = e.line
        else:
            row_lines[same] = e.line
        if in_team and number:
            number_lines[(in_team, number)] = e.line
    return verdicts


def problems(entries: typing.Sequence[Entry], verdicts: typing.Mapping[int, Verdict]) -> dict[int, list[str]]:
    """Every row's errors, its own and the data's (an empty list: the row can be written)."""
    return {e.line: [*e.errors, *(verdicts[e.line].errors if e.line in verdicts else [])] for e in entries}


async def matched_cards(pool: aiopg.Pool, entries: typing.Sequence[Entry]) -> dict[int, db.Row]:
    """The existing card each row would update (matched by phone, as the confirm matches): {line: id, cn_name}."""
    phones = {e.card.get("mobile") for e in entries if e.card.get("mobile")}
    if not phones:
        return {}
    rows = await db.fetchall(pool, "SELECT id, cn_name, mobile FROM players WHERE mobile = ANY(%s)", (sorted(phones),))
    by_phone = {r["mobile"]: r for r in rows}
    return {e.line: by_phone[e.card["mobile"]] for e in entries if e.card.get("mobile") in by_phone}


async def preview(pool: aiopg.Pool, entries: typing.Sequence[Entry]) -> dict[int, list[str]]:
    """Every row's errors as the data stands now; nothing is written."""
    async with db.transaction(pool) as cur:
        return problems(entries, await check(cur, entries))


# -- writing ----------------------------------------------------------------------------------------

# The cards matched by phone, in one statement: a blank cell (empty text, no number, sex 0) keeps the card's value.
UPDATE_SQL = """
    UPDATE players p SET cn_name = v.cn_name, number = COALESCE(NULLIF(v.number, ''), p.number),
           mobile = COALESCE(NULLIF(v.mobile, ''), p.mobile), sex = COALESCE(NULLIF(v.sex, 0), p.sex),
           birthday = COALESCE(v.birthday, p.birthday), stature = COALESCE(v.stature, p.stature),
           weight = COALESCE(v.weight, p.weight), position = COALESCE(NULLIF(v.position, ''), p.position),
           updated_at = now()
    FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::smallint[], %s::date[], %s::int[],
                %s::numeric[], %s::text[]) AS v (id, cn_name, number, mobile, sex, birthday, stature, weight, position)
    WHERE p.id = v.id
    RETURNING p.user_id
"""


async def commit(app: typing.Any, entries: typing.Sequence[Entry], actor: audit.Actor, source: str) -> Outcome:
    """The rows valid now (checked again in the transaction: the data may have changed since the preview)
    written in one transaction: new cards, cards matched by phone updated (a blank cell keeps the card's
    value), memberships; one audit entry "players.import" with the counts."""
    async with db.transaction(app[pg_key]) as cur:
        # No membership is added or ended by anyone else until this import is written (the import's checks
        # hold until then); a second import waits for this one.
        await cur.execute("LOCK TABLE team_members IN SHARE ROW EXCLUSIVE MODE")
        verdicts = await check(cur, entries, lock=True)
        found = problems(entries, verdicts)
        valid = [e for e in entries if not found[e.line]]
        new = [e for e in valid if verdicts[e.line].player_id is None]
        await cur.execute("SELECT nextval(pg_get_serial_sequence('players', 'id')) AS id"
                          " FROM generate_series(1, %s)", (len(new),))
        for e, r in zip(new, await cur.fetchall(), strict=True):
            verdicts[e.line].player_id = r["id"]
        if new:
            await cur.execute(
                """INSERT INTO players (id, cn_name, number, mobile, sex, birthday, stature, weight, position)
                   SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::smallint[],
                                        %s::date[], %s::int[], %s::numeric[], %s::text[])""",
                [[verdicts[e.line].player_id for e in new], *([e.card[k] for e in new] for k in CARD_KEYS)])
        created = {e.line for e in new}
        matched = [e for e in valid if e.line not in created]
        users: list[int] = []
        if matched:
            await cur.execute(UPDATE_SQL, [[verdicts[e.line].player_id for e in matched],
                                           *([e.card[k] for e in matched] for k in CARD_KEYS)])
            users = [r["user_id"] for r in await cur.fetchall() if r["user_id"]]
        joins = [e for e in valid if verdicts[e.line].team_id]
        if joins:
            # A date is the club's day (connections run in its time zone); no date: now.
            await cur.execute(
                """INSERT INTO team_members (team_id, player_id, joined_at)
                   SELECT team_id, player_id, COALESCE(day::timestamptz, now())
                   FROM unnest(%s::bigint[], %s::bigint[], %s::date[]) AS j (team_id, player_id, day)""",
                ([verdicts[e.line].team_id for e in joins], [verdicts[e.line].player_id for e in joins],
                 [e.joined for e in joins]))
        outcome = Outcome(len(new), len(valid) - len(new), len(joins),
                          [(e.line, found[e.line]) for e in entries if found[e.line]])
        await audit.record(cur, actor, "players.import", "", f"导入球员卡「{source[:80]}」",
                           after={"file": source, "rows": len(entries), **outcome.counts})
    for user_id in users:
        await user_changed(app, user_id)
    if joins or users:
        await teams_changed(app)
    return outcome
