"""The event loop the server runs on: uvloop's when it is installed (`pip install '.[speed]'`), asyncio's
otherwise. uvloop (libuv) writes sockets and runs callbacks with less work per call, which is most of what
the chat's fan-out and a cached answer cost; the tests run in-process on asyncio's loop, so both are used."""

from __future__ import annotations

import asyncio
import importlib.util
import typing

T = typing.TypeVar("T")
CHOICES = ("auto", "uvloop", "asyncio")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def chosen(choice: str) -> str:
    """The loop `choice` (one of CHOICES) runs on: "uvloop" or "asyncio"."""
    if choice == "asyncio" or (choice == "auto" and not uvloop_installed()):
        return "asyncio"
    return "uvloop"


def new_loop(choice: str = "auto") -> asyncio.AbstractEventLoop:
    """A new loop of the chosen kind. ImportError for "uvloop" when it is not installed."""
    if chosen(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: typing.Coroutine[typing.Any, typing.Any, T], choice: str = "auto") -> T:
    """asyncio.run(main) on a new loop of the chosen kind."""
    with asyncio.Runner(loop_factory=lambda: new_loop(choice)) as runner:
        return runner.run(main)
