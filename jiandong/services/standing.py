"""Who may act: a user's standing (account and membership) checked once for chatting, buying and logging in."""

from __future__ import annotations

import enum
import typing

from ..errors import Forbidden, MemberNotFound, UserNotFound
from . import membership


class Action(enum.Enum):
    CHAT = "chat"
    BUY = "buy"
    LOGIN = "login"


Row = typing.TypeVar("Row", bound=typing.Mapping[str, typing.Any])


def check_standing(row: Row | None, action: Action) -> Row:
    """`row` itself, unless the user in it ({is_disabled, member_status}; None = no such user) may not do
    `action`: then the error that says so is raised.

    A disabled account may do nothing (UserNotFound). A membership an admin disabled still logs in,
    but may not chat (MemberNotFound) nor buy (Forbidden). `row` needs member_status only past LOGIN.
    """
    if row is None or row["is_disabled"]:
        raise UserNotFound()
    if action is Action.LOGIN or row["member_status"] != membership.DISABLED:
        return row
    if action is Action.CHAT:
        raise MemberNotFound()
    raise Forbidden("权限不够: 会员资格已被禁用，不能购买")
