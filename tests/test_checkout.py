"""The checkout holds sources only: what the README's commands, the tests and their tools write into it is
git-ignored, and none of it is committed, so `git status` stays empty after a run (`.ci/run` checks that)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A file of each kind a run writes into the checkout: the venv and the package's metadata (pip install -e),
# the embedded servers and media (server.py), bytecode, pytest's cache, the browser tests' screenshots,
# schemathesis' and hypothesis' caches (a fuzzer run by hand), ruff's, mypy's and import-linter's caches,
# mutation testing's work, coverage's data.
WRITTEN = (
    ".venv/bin/python",
    "jiandong.egg-info/PKG-INFO",
    "var/pg/postgresql.conf",
    "var/media/demo/banners/1.jpg",
    "var/mutation/auth/mutants/jiandong/web/auth.py",
    "var/coverage/data",
    "jiandong/__pycache__/app.cpython-311.pyc",
    "tests/__pycache__/conftest.cpython-311-pytest-8.4.2.pyc",
    ".pytest_cache/v/cache/lastfailed",
    "tests/artifacts/dashboard.png",
    ".schemathesis/default/cache/crashes/manifest.json",
    ".hypothesis/unicode_data/14.0.0/charmap.json.gz",
    ".ruff_cache/0.17.6/123456789",
    ".import_linter_cache/jiandong.meta.json",
    ".mypy_cache/3.11/cache.0.db",
    "build/lib/jiandong/app.py",
)


def git(*args: str) -> subprocess.CompletedProcess[str]:
    # The repository's own rules only, not those of whoever runs it.
    return subprocess.run(["git", "-c", "core.excludesFile=/dev/null", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def checkout() -> None:
    if shutil.which("git") is None or git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip("not a git checkout")


@pytest.mark.usefixtures("checkout")
def test_what_a_run_writes_is_git_ignored_and_none_of_it_committed():
    ignored = git("check-ignore", "--no-index", *WRITTEN).stdout.splitlines()
    assert [path for path in WRITTEN if path not in ignored] == []
    # Tracked files that the ignore rules match: a cache committed before its rule was written.
    assert git("ls-files", "--cached", "--ignored", "--exclude-standard").stdout.splitlines() == []
