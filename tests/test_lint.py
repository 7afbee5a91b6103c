"""The code passes ruff with the project's settings (ruff.toml), and the tests share code only through
tests/conftest.py (fixtures) and tests/helpers/ (the rest)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _ours(module: str) -> bool:
    """Whether an import's module is in tests/ (relative, or under `tests.`), not another package's."""
    return module.startswith(".") or module.split(".", 1)[0] == "tests"


def _is_test_module(dotted: str) -> bool:
    # Another package's module named like one (aiohttp.test_utils) is none of ours.
    if "." in dotted.lstrip(".") and not _ours(dotted):
        return False
    last = dotted.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (test_*.py, conftest.py) that the module at `path` imports, as written."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if _is_test_module(module):
                found.append(module)
            # `from tests import test_x` and `from . import test_x` import a module by its name.
            found += [f"{module}.{alias.name}".replace("..", ".") for alias in node.names
                      if _ours(module or ".") and _is_test_module(alias.name)]
    return found


def test_no_test_module_imports_another():
    # A test module imported by another runs its fixtures and module-level code twice, ties the two
    # together by accident, and hides where a shared fixture lives; shared code goes to tests/helpers/.
    offenders = {
        str(path.relative_to(ROOT)): names
        for path in sorted(TESTS.rglob("*.py"))
        if (names := imported_test_modules(path))
    }
    assert offenders == {}


def test_the_import_check_sees_each_form(tmp_path):
    module = tmp_path / "test_example.py"
    module.write_text("\n".join([
        "import tests.test_orders", "from tests.test_videos import add_live", "from tests import test_workers",
        "from . import test_outages", "from tests.conftest import login", "from tests.helpers.api import call",
    ]))
    assert imported_test_modules(module) == [
        "tests.test_orders", "tests.test_videos", "tests.test_workers", ".test_outages", "tests.conftest",
    ]


def test_the_check_tells_our_test_modules_from_another_packages(tmp_path):
    def imports(source: str) -> list[str]:
        path = tmp_path / "sample.py"
        path.write_text(source)
        return imported_test_modules(path)

    assert imports("from tests.test_pay import x\nfrom . import test_orders\nimport conftest\n"
                   "from tests import test_lint\n") == ["tests.test_pay", ".test_orders", "conftest", "tests.test_lint"]
    assert imports("from aiohttp.test_utils import make_mocked_request\nfrom aiohttp import test_utils\n"
                   "import aiohttp.test_utils\n") == []
