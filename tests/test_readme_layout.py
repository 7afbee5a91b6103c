"""README's "Layout" section is a map of the tree: every package and top-level module of jiandong/ has its
line, nothing listed is missing, and the packages whose modules the map names one by one name all of them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jiandong"
# The packages whose line (and its continuation) names each of their modules.
ENUMERATED = ("web", "store", "ops", "lib", "realtime", "demo")


def layout() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1].splitlines()


def entries() -> dict[str, str]:
    """The lines under jiandong/: name (`app.py`, `web/`) -> its text with the continuation lines."""
    found: dict[str, str] = {}
    inside, current = False, None
    for line in layout():
        if line.startswith("jiandong/"):
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break
        if not inside:
            continue
        m = re.match(r"^  (\S+)\s+(.*)$", line)
        if m:
            current = m.group(1)
            found[current] = m.group(2)
        elif current is not None:
            found[current] += " " + line.strip()
    return found


def tree() -> set[str]:
    names = set()
    for path in PACKAGE.iterdir():
        if path.is_dir() and (path / "__init__.py").exists():
            names.add(path.name + "/")
        elif path.suffix == ".py" and path.name != "__init__.py":
            names.add(path.name)
    return names


def test_the_layout_lists_exactly_the_packages_and_top_level_modules():
    listed = set(entries())
    assert sorted(tree() - listed) == [], "in jiandong/ but not in README's Layout"
    assert sorted(listed - tree()) == [], "in README's Layout but not in jiandong/"


def test_each_enumerated_package_names_every_module_it_holds():
    text = entries()
    missing = []
    for package in ENUMERATED:
        for module in sorted((PACKAGE / package).glob("*.py")):
            stem = module.stem
            if stem == "__init__" and package != "realtime":
                continue
            if not re.search(rf"\b{re.escape(stem)}(\.py)?\b", text[package + "/"]):
                missing.append(f"{package}/{module.name}")
    assert missing == []
