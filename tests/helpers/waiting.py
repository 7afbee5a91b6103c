"""Waiting for something another task or process does: a bounded wait, never a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
import typing

# How long a test waits for something to happen (a background round, a message from another process):
# it only bounds the wait, it is no speed to meet (figures to meet belong in bench/).
WAIT = 15.0
# How often a waiting test looks again.
POLL = 0.02

async def until(check: typing.Callable[[], typing.Any], what: str, wait: float = WAIT) -> None:
    """Look at `check` (a plain or async function) until it is true; fail naming `what` after `wait` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(POLL)
