"""What no log line may hold: a login token, a full phone number, a configured secret. The test run's whole
log is scanned for them (conftest.py collects it; the run fails on a finding)."""

from __future__ import annotations

import logging
import re
import typing

# Login tokens are 32 lowercase hex digits (secrets.token_hex(16)); longer runs (digests) are not tokens.
TOKEN = re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{32}(?![0-9a-fA-F])")
# A mainland mobile number in full (a masked one, 138****8000, is fine), standing on its own: an order
# number's random hex tail (…0023D19717789768) may hold eleven such digits and is no phone number.
PHONE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
# The test harness's own aiohttp servers (the fakes) log their requests, query strings and all; the
# server itself runs without aiohttp's access log.
HARNESS_LOGGERS = ("aiohttp.access",)


class RunLog(logging.Handler):
    """Every record of the run, as the text a log line would carry (message and traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(HARNESS_LOGGERS):
            return
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that does not format is not ours to judge here
            self.handleError(record)


def leaks(lines: typing.Iterable[str], secrets: typing.Iterable[str]) -> list[str]:
    """The lines that hold a token, a full phone number or one of `secrets`, each with what it holds."""
    wanted = [s for s in set(secrets) if len(s) >= 6]
    found = []
    for line in lines:
        what = [kind for kind, pattern in (("token", TOKEN), ("phone", PHONE)) if pattern.search(line)]
        what += ["secret" for s in wanted if s in line]
        if what:
            found.append(f"{'/'.join(what)}: {line[:300]}")
    return found
