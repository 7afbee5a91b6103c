"""Staff accounts of the admin console: roles, argon2 password hashes, disabling, login throttling."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import typing

import aiopg
import argon2

from ..store import db
from . import passwords

OWNER, EDITOR, MODERATOR = "owner", "editor", "moderator"
ROLES = (OWNER, EDITOR, MODERATOR)
ROLE_LABELS = {OWNER: "所有者", EDITOR: "编辑", MODERATOR: "审核员"}
USERNAME_MAX = 40
PASSWORD_MIN = passwords.PASSWORD_MIN
PASSWORD_MAX = passwords.PASSWORD_MAX

_hasher = argon2.PasswordHasher()
# Verified against when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AdminError(ValueError):
    """A staff account change that the rules refuse; the message is shown to the user."""


@dataclasses.dataclass(frozen=True)
class Admin:
    id: int
    username: str
    role: str
    is_active: bool
    password_changed_at: dt.datetime
    created_at: dt.datetime | None = None
    last_login_time: dt.datetime | None = None

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    @property
    def password_stamp(self) -> str:
        """Changes with every password change: sessions made before it end."""
        return self.password_changed_at.isoformat()


COLUMNS = "id, username, role, is_active, password_changed_at, created_at, last_login_time"


def _admin(row: db.Row | None) -> Admin | None:
    return None if row is None else Admin(**row)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def check_password_rules(password: str, username: str) -> None:
    """Every path that sets a password comes here: long enough, not common, not the account's name
    (services/passwords.py). AdminError with the reason in Chinese."""
    reason = await asyncio.to_thread(passwords.weakness, password, username)
    if reason:
        raise AdminError(reason)


def check_username(username: str) -> str:
    username = username.strip()
    if not 1 <= len(username) <= USERNAME_MAX or any(c.isspace() or ord(c) < 32 for c in username):
        raise AdminError(f"用户名须为 1~{USERNAME_MAX} 个字符，不含空白")
    return username


async def get_admin(pool: aiopg.Pool, admin_id: int) -> Admin | None:
    return _admin(await db.fetchone(pool, f"SELECT {COLUMNS} FROM admins WHERE id = %s", (admin_id,)))


async def list_admins(pool: aiopg.Pool) -> list[Admin]:
    rows = await db.fetchall(pool, f"SELECT {COLUMNS} FROM admins ORDER BY lower(username)")
    return [Admin(**row) for row in rows]


async def create_admin(pool: aiopg.Pool, username: str, password: str, role: str) -> Admin:
    username = check_username(username)
    if role not in ROLES:
        raise AdminError("角色无效")
    await check_password_rules(password, username)
    password_hash = await asyncio.to_thread(hash_password, password)
    try:
        row = await db.fetchone(
            pool,
            f"INSERT INTO admins (username, password_hash, role) VALUES (%s, %s, %s) RETURNING {COLUMNS}",
            (username, password_hash, role),
        )
    except Exception as exc:
        if db.is_unique_violation(exc):
            raise AdminError(f"用户名 {username} 已存在") from None
        raise
    assert row is not None
    return Admin(**row)


async def authenticate(pool: aiopg.Pool, username: str, password: str) -> Admin | None:
    """The enabled account with this name and password, else None (same work either way)."""
    row = await db.fetchone(
        pool, f"SELECT {COLUMNS}, password_hash FROM admins WHERE lower(username) = lower(%s)", (username.strip(),)
    )
    stored = row.pop("password_hash") if row else _DUMMY_HASH
    try:
        await asyncio.to_thread(_hasher.verify, stored, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return None
    if row is None or not row["is_active"]:
        return None
    if _hasher.check_needs_rehash(stored):
        new_hash = await asyncio.to_thread(hash_password, password)
        await db.execute(pool, "UPDATE admins SET password_hash = %s WHERE id = %s", (new_hash, row["id"]))
    await db.execute(pool, "UPDATE admins SET last_login_time = now() WHERE id = %s", (row["id"],))
    return Admin(**row)


async def set_password(pool: aiopg.Pool, admin_id: int, password: str) -> Admin:
    """A new password; every session of the account made before it ends (the stamp changes)."""
    account = await get_admin(pool, admin_id)
    if account is None:
        raise AdminError("账号不存在")
    await check_password_rules(password, account.username)
    password_hash = await asyncio.to_thread(hash_password, password)
    row = await db.fetchone(
        pool,
        "UPDATE admins SET password_hash = %s, password_changed_at = clock_timestamp(), updated_at = now()"
        f" WHERE id = %s RETURNING {COLUMNS}",
        (password_hash, admin_id),
    )
    if row is None:
        raise AdminError("账号不存在")
    return Admin(**row)


async def change_own_password(pool: aiopg.Pool, admin_id: int, current: str, new: str) -> Admin:
    row = await db.fetchone(pool, "SELECT password_hash FROM admins WHERE id = %s", (admin_id,))
    try:
        await asyncio.to_thread(_hasher.verify, row["password_hash"] if row else _DUMMY_HASH, current)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        raise AdminError("当前密码不正确") from None
    return await set_password(pool, admin_id, new)


async def update_admin(pool: aiopg.Pool, admin_id: int, *, role: str, is_active: bool) -> Admin:
    """Change an account's role and whether it is enabled. AdminError: unknown role or account, or the
    change would leave no enabled owner."""
    if role not in ROLES:
        raise AdminError("角色无效")
    async with db.transaction(pool) as cur:
        await _keep_an_owner(cur, admin_id, stays_owner=role == OWNER and is_active)
        await cur.execute(
            f"""UPDATE admins SET role = %s, is_active = %s, updated_at = now() WHERE id = %s
                RETURNING {COLUMNS}""",
            (role, is_active, admin_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise AdminError("账号不存在")
    return Admin(**row)


async def _keep_an_owner(cur: typing.Any, admin_id: int, *, stays_owner: bool) -> None:
    """The one place of the rule "at least one enabled owner": every change that could take an owner away
    (demoting, disabling, deleting) calls it first, in its transaction. The enabled owners' rows are locked,
    so two such changes at once run one after the other and the second sees what the first did (two owners
    demoting each other: the second is refused)."""
    await cur.execute("SELECT id FROM admins WHERE role = 'owner' AND is_active ORDER BY id FOR UPDATE")
    owners = {row["id"] for row in await cur.fetchall()}
    if not stays_owner and owners == {admin_id}:
        raise AdminError("至少要保留一个启用的所有者账号")


def role_allows(role: str, allowed: typing.Iterable[str]) -> bool:
    return role == OWNER or role in allowed
