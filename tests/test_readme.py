"""The README's walk-through, run as a script against a started server: each step's answer as shown."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess

from tests.helpers.servers import ROOT, server_env

README = ROOT / "README.md"
MARKER = "<!-- the walk-through"


def walk_through() -> str:
    """The shell block right after the marker."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(MARKER):]
    return after.split("```sh\n", 1)[1].split("\n```", 1)[0]


def expected_answers(block: str) -> list[str]:
    """The comment right under a command is the answer it prints."""
    answers, previous = [], ""
    for line in block.splitlines():
        if line.startswith("# ") and previous and not previous.startswith("#"):
            answers.append(line[2:])
        previous = line
    return answers


def pattern(answer: str) -> re.Pattern[str]:
    """An answer shown in the README as a pattern: `...` stands for anything, tokens and codes for any."""
    parts = [re.escape(part) for part in answer.split("...")]
    text = ".*".join(parts)
    text = re.sub(r"[0-9a-f]{32}", "[0-9a-f]{32}", text)
    text = re.sub(r'(?<=")\d{6}(?=")', r"\\d{6}", text)
    return re.compile(text)


def test_pattern_stands_for_tokens_codes_and_elisions():
    assert pattern('{"token":"0bdaddf44715fe3f382d1ceee2700caa"}').fullmatch('{"token":"' + "a1" * 16 + '"}')
    assert pattern('{"dev_code":"001764"}').fullmatch('{"dev_code":"123456"}')
    assert not pattern('{"error_code":0,...}').fullmatch('{"error_code":1,"x":2}')
    assert pattern('{"error_code":0,...}').fullmatch('{"error_code":0,"x":2}')


async def test_the_readme_walk_through_works_when_pasted(servers, settings, tmp_path, sql):
    block = walk_through()
    answers = expected_answers(block)
    assert len(answers) == 7, answers
    _, port, _ = await servers.start(server_env(settings, tmp_path / "var"))
    result = await asyncio.to_thread(
        subprocess.run, ["bash", "-c", block], env={"PORT": str(port), "PATH": os.environ["PATH"]},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    printed = result.stdout.splitlines()
    assert len(printed) == len(answers), printed
    for shown, got in zip(answers, printed, strict=True):
        assert pattern(shown).fullmatch(got), (shown, got)
    assert sql("SELECT username, mobile, sex FROM users") == [
        {"username": "Zhang_San", "mobile": "13800138000", "sex": 1}]
