"""Background tasks stop even when their first cancellation is lost."""

from __future__ import annotations

import asyncio
import logging

import pytest

from jiandong.lib.stopping import cancel_and_wait
from tests.helpers.waiting import until


async def test_a_task_that_loses_its_cancellation_is_cancelled_again(caplog: pytest.LogCaptureFixture) -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            try:
                await asyncio.sleep(0.05)  # a round's work, not a wait
            except asyncio.CancelledError:
                if rounds > 3:
                    raise
                # what a library that loses a cancellation amounts to: the loop goes on

    task = asyncio.create_task(loop(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="jiandong.lib.stopping"):
        await asyncio.wait_for(cancel_and_wait(task), 10)
    assert task.cancelled()
    assert "task stubborn outlived its cancellation" in caplog.text


async def test_failures_are_reported_and_finished_tasks_are_fine(caplog: pytest.LogCaptureFixture) -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    failed = asyncio.create_task(fail(), name="failing")
    finished = asyncio.create_task(asyncio.sleep(0), name="finished")
    await until(lambda: failed.done() and finished.done(), "both tasks to end")
    with caplog.at_level(logging.ERROR, logger="jiandong.lib.stopping"):
        await cancel_and_wait(failed, finished)
    assert finished.done() and not finished.cancelled()
    assert "task failing had failed" in caplog.text
    assert "finished" not in caplog.text
