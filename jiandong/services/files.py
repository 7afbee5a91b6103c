"""The files table: recording stored files and the `file` object the pages read ({cate, name, original, size};
its schema is web/openapi.FILE_OBJECT)."""

from __future__ import annotations

import typing

import aiopg


def file_columns(alias: str = "f", prefix: str = "file_") -> str:
    """The SELECT list for `file_object`, from a (LEFT) JOINed files table aliased `alias`."""
    return ", ".join(f"{alias}.{col} AS {prefix}{col}" for col in ("id", "cate", "name", "original", "size"))


def file_object(
    row: typing.Mapping[str, typing.Any], *, prefix: str = "file_", fallback_name: str = ""
) -> dict[str, typing.Any]:
    """The file object of a row selected with `file_columns`.

    No file row (the LEFT JOIN found nothing) gives an empty object named `fallback_name`
    instead of null: the pages read `file.name` without checking for null.
    """
    if row.get(f"{prefix}id") is None:
        return {"cate": "", "name": fallback_name, "original": "", "size": 0}
    return {
        "cate": row[f"{prefix}cate"],
        "name": row[f"{prefix}name"],
        "original": row[f"{prefix}original"],
        "size": int(row[f"{prefix}size"]),
    }


# One row per stored file and owner: saving the same avatar again does not add rows.
RECORD_FILE_SQL = """
    INSERT INTO files (cate, name, original, size, mime, sha256, user_id)
    SELECT %(cate)s, %(name)s, %(original)s, %(size)s, %(mime)s, %(sha256)s, %(user_id)s
    WHERE NOT EXISTS (
        SELECT 1 FROM files WHERE name = %(name)s AND user_id IS NOT DISTINCT FROM %(user_id)s
    )
"""


async def record_file(
    cur: aiopg.Cursor,
    *,
    name: str,
    size: int,
    mime: str,
    sha256: str,
    user_id: int | None,
    original: str = "",
    cate: str = "image",
) -> None:
    """Record a stored file (inside the caller's transaction)."""
    await cur.execute(
        RECORD_FILE_SQL,
        {
            "cate": cate,
            "name": name,
            "original": original,
            "size": size,
            "mime": mime,
            "sha256": sha256,
            "user_id": user_id,
        },
    )



class StoredFile(typing.NamedTuple):
    """A file the console stored under the media dir (or a URL given for one), to record in `files`."""

    url: str
    cate: str
    original: str = ""
    size: int = 0
    mime: str = ""
    sha256: str | None = None

    async def record(self, cur: aiopg.Cursor) -> int:
        """Insert its `files` row inside the caller's transaction; the row's id."""
        await cur.execute(
            "INSERT INTO files (cate, name, original, size, mime, sha256) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (self.cate, self.url, self.original, self.size, self.mime, self.sha256),
        )
        row = await cur.fetchone()
        return row["id"] if isinstance(row, dict) else row[0]
