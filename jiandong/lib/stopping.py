"""Stopping background tasks for good."""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)

RECANCEL_AFTER = 1.0


async def cancel_and_wait(*tasks: asyncio.Task[object]) -> None:
    """Cancel `tasks` and return once every one has ended, whatever it ended with.

    One cancellation is not always enough: redis-py, under Python 3.11, now and then loses a
    cancellation that lands while it sends a command, and the command simply completes. A loop
    that only stops on cancellation would then run on, and a shutdown waiting for it would hang.
    A task still running a moment after its cancellation is therefore cancelled again.
    """
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_AFTER)
        for task in pending:
            logger.warning("task %s outlived its cancellation; cancelling it again", task.get_name())
            task.cancel()
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            logger.error("task %s had failed", task.get_name(), exc_info=task.exception())
