"""The box score's columns (one table: the form, the checks, the report table, the season statistics and the
export all read it), the text of a result, and the report's HTML built with every value escaped."""

from __future__ import annotations

import dataclasses
import typing

from markupsafe import escape


@dataclasses.dataclass(frozen=True)
class Stat:
    key: str  # the key in box_scores.stats
    label: str  # the short header the report and the console show
    maximum: int  # the largest value one player can have in one match


# Basketball, in the order a box score reads. Another sport is another list of the same shape.
BASKETBALL = [
    Stat("minutes", "时间", 99),
    Stat("points", "得分", 200),
    Stat("rebounds", "篮板", 99),
    Stat("assists", "助攻", 99),
    Stat("steals", "抢断", 99),
    Stat("blocks", "盖帽", 99),
    Stat("turnovers", "失误", 99),
    Stat("fouls", "犯规", 9),
]
COLUMNS = BASKETBALL
POINTS = "points"
# Up to four periods and one overtime.
PERIOD_LABELS = ["第一节", "第二节", "第三节", "第四节", "加时"]


def parse_stat(stat: Stat, raw: str) -> int | None:
    """A typed value: None for empty; ValueError (its message for the console) when not a whole number in range."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 4 or int(raw) > stat.maximum:
        raise ValueError(f"{stat.label}须为 0~{stat.maximum} 的整数")
    return int(raw)


def score_text(team: str, club: int, opponent_score: int, opponent: str) -> str:
    """What the H5 `score` reads: 建东猛龙 88 : 76 青竹队."""
    return f"{team} {club} : {opponent_score} {opponent}"


def points_warning(rows: typing.Iterable[typing.Mapping[str, typing.Any]], club_score: int | None) -> str:
    """A warning when the players' points do not add up to the club's score ('' when they do or nothing to check)."""
    points = [row["stats"].get(POINTS) for row in rows]
    if club_score is None or not points:
        return ""
    total = sum(p or 0 for p in points)
    return "" if total == club_score else f"得分合计 {total} 与比分 {club_score} 不符"


def periods_warning(periods: typing.Sequence[typing.Sequence[int]] | None, club: int | None,
                    opponent: int | None) -> str:
    if not periods or club is None or opponent is None:
        return ""
    mine, theirs = sum(p[0] for p in periods), sum(p[1] for p in periods)
    if (mine, theirs) == (club, opponent):
        return ""
    return f"各节比分合计 {mine} : {theirs} 与比分 {club} : {opponent} 不符"


# Inline styles only: the pages insert `description` as HTML without a style sheet of ours. The wrapper
# scrolls sideways on its own, so a narrow phone never scrolls the page.
WRAP = 'style="overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%;margin:12px 0"'
TABLE = 'style="border-collapse:collapse;min-width:100%;font-size:13px;line-height:1.4;white-space:nowrap"'
TH = 'style="padding:6px 5px;border-bottom:1px solid #ccc;background:#f4f5f7;text-align:{align};font-weight:600"'
TD = 'style="padding:6px 5px;border-bottom:1px solid #eee;text-align:{align}"'


def _row(cells: typing.Iterable[typing.Any], tag: str, first_left: bool = True) -> str:
    template = TH if tag == "th" else TD
    out = []
    for n, cell in enumerate(cells):
        align = "left" if n == 0 and first_left else "center"
        out.append(f"<{tag} {template.format(align=align)}>{escape(cell)}</{tag}>")
    return "<tr>" + "".join(out) + "</tr>"


def _table(caption: str, head: list[str], body: list[list[typing.Any]], foot: list[typing.Any] | None = None) -> str:
    html = [f"<div class=\"box-score\" {WRAP}>",
            f"<p style=\"margin:0 0 6px;font-weight:600\">{escape(caption)}</p>",
            f"<table {TABLE}>", "<thead>", _row(head, "th"), "</thead>", "<tbody>"]
    html += [_row(cells, "td") for cells in body]
    if foot is not None:
        html += [_row(foot, "th")]
    html += ["</tbody>", "</table>", "</div>"]
    return "".join(html)


def player_name(row: typing.Mapping[str, typing.Any]) -> str:
    number = (row.get("number") or "").strip()
    return f"{row['cn_name']} #{number}" if number else str(row["cn_name"])


def report_html(team: str, opponent: str, periods: typing.Sequence[typing.Sequence[int]] | None,
                club: int, opponent_score: int, rows: typing.Sequence[typing.Mapping[str, typing.Any]]) -> str:
    """The result's part of the match report: the score by period (if kept) and the box score, as HTML."""
    parts = []
    if periods:
        head = ["球队", *PERIOD_LABELS[:len(periods)], "总分"]
        parts.append(_table("各节比分", head, [[team, *[p[0] for p in periods], club],
                                              [opponent, *[p[1] for p in periods], opponent_score]]))
    if rows:
        body = [[player_name(row), *[_cell(row["stats"].get(s.key)) for s in COLUMNS]] for row in rows]
        totals = ["合计", *[sum(row["stats"].get(s.key) or 0 for row in rows) for s in COLUMNS]]
        parts.append(_table(f"{team} 技术统计", ["球员", *[s.label for s in COLUMNS]], body, totals))
    return "".join(parts)


def _cell(value: typing.Any) -> typing.Any:
    return "-" if value is None else value
