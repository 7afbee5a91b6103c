"""The type checker passes with the project's settings (mypy.ini), and every typed key of jiandong/keys.py
names a type it can see: a key whose type resolved to Any would let anything through unchecked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from jiandong import keys

ROOT = Path(__file__).resolve().parent.parent
# mypy's first run takes a while on a busy machine; later runs read its cache.
TIMEOUT = 600


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", "mypy.ini", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_mypy_finds_nothing():
    result = mypy()
    assert result.returncode == 0, result.stdout + result.stderr


def key_names() -> list[str]:
    return [name for name, value in vars(keys).items() if isinstance(value, (web.AppKey, web.RequestKey))]


def test_every_key_has_a_type_the_checker_resolves(tmp_path: Path):
    names = key_names()
    assert {"settings_key", "admin_key", "realtime_key"} <= set(names)
    probe = tmp_path / "probe.py"
    probe.write_text("from jiandong import keys\n\n" + "".join(f"reveal_type(keys.{name})\n" for name in names))
    result = mypy(str(probe))
    assert result.returncode == 0, result.stdout + result.stderr
    revealed = re.findall(r'probe\.py:(\d+): note: Revealed type is "[\w.]+\[(.*)\]"', result.stdout)
    assert len(revealed) == len(names), result.stdout
    # Line 3 reveals the first key; a key's type is Any itself or one of its union's members is.
    unresolved = [names[int(line) - 3] for line, type_ in revealed if "Any" in re.split(r" \| ", type_)]
    assert unresolved == [], result.stdout
