"""Membership status rules: what a stored status means now."""

from __future__ import annotations

ACTIVE, DISABLED, EXPIRED, NONE = 1, 2, 3, 0

# The stored status is 0/1/2; an active membership past its expiry reads as 3 (expired).
# Use as `{MEMBER_STATUS_SQL} AS member_status` with the users table aliased `u`.
MEMBER_STATUS_SQL = (
    "CASE WHEN u.member_status = 1 AND (u.member_expire_time IS NULL OR u.member_expire_time <= now())"
    " THEN 3 ELSE u.member_status END"
)
