"""On a Redis Cluster a script may only touch keys of one hash slot: every script the package registers is
found in the source, and one that takes several keys has them built here by its module's own key helpers,
for sample ids, and checked to share a slot."""

from __future__ import annotations

import importlib
import re
import typing
from pathlib import Path

import pytest
from redis.crc import key_slot

from jiandong.services import counters, verification
from jiandong.settings import Settings
from jiandong.store.room_channels import room_channel, room_stream

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jiandong"
REGISTERED = re.compile(r"register_script\((\w+)\)")
SETTINGS = Settings(redis_prefix="jd:")

PHONES = ("13800138000", "19912345678")
ADDRESSES = ("203.0.113.7", "2001:db8::1", "-")
DAYS = ("20260101", "20261231")
ROOMS = (1, 61, 99_999)


class NoRedis:
    """Enough of a client to build the objects that register scripts."""

    def register_script(self, script: str) -> None:
        return None


COUNTS = counters.ViewCounts(NoRedis(), None, SETTINGS)  # type: ignore[arg-type]


def views(*parts: str) -> typing.Iterator[list[str]]:
    """Per kind, the keys named by `parts`: main, flush (a fresh one), flushing."""
    for kind in counters.TABLES:
        named = {"main": COUNTS.hash_key(kind), "flush": COUNTS.flush_key(kind), "flushing": COUNTS.flushing_key(kind)}
        yield [named[p] for p in parts]


def day_counters() -> typing.Iterator[list[str]]:
    for day in DAYS:
        for phone in PHONES:
            for ip in ADDRESSES:
                yield verification._day_counters(SETTINGS, day, phone, ip)


# The keys of each call of a script that takes several, as its caller passes them.
SEVERAL_KEYS: dict[tuple[str, str], typing.Callable[[], typing.Iterable[list[str]]]] = {
    ("services/counters.py", "TAKE_LUA"): lambda: views("main", "flush", "flushing"),
    ("services/counters.py", "DONE_LUA"): lambda: views("flush", "flushing"),
    ("services/counters.py", "RESTORE_LUA"): lambda: views("flush", "main", "flushing"),
    # Also the flush keys the in-flight set lists, which it reads undeclared.
    ("services/counters.py", "PENDING_LUA"): lambda: views("main", "flushing", "flush"),
    ("services/verification.py", "_TAKE_QUOTA"): day_counters,
    ("services/verification.py", "_GIVE_BACK"): day_counters,
    # The publish command's channel counts as a key on a cluster.
    ("realtime/history.py", "APPEND_AND_PUBLISH"): lambda: ([room_stream(SETTINGS, r), room_channel(SETTINGS, r)]
                                                            for r in ROOMS),
}

# Scripts over the keys of versions before the hash tags, which ran on no cluster: called only when the client
# is no cluster client, right under `if not is_cluster(...)`.
SINGLE_REDIS_ONLY = {("services/verification.py", "_FOLD_EARLIER")}


def registered() -> list[tuple[str, str]]:
    """(module path under jiandong/, script constant) of every register_script call."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in REGISTERED.findall(path.read_text(encoding="utf-8")):
            found.append((path.relative_to(PACKAGE).as_posix(), name))
    return found


def source(module: str, name: str) -> str:
    return getattr(importlib.import_module("jiandong." + module.removesuffix(".py").replace("/", ".")), name)


def takes_one_key(script: str) -> bool:
    """Whether the script names no key but KEYS[1] (KEYS[i] in a loop, #KEYS or unpack(KEYS) count as several)."""
    return set(re.findall(r"KEYS\[([^]]*)\]", script)) <= {"1"} and not re.search(r"#KEYS|\(KEYS", script)


def test_every_script_built_here_is_still_registered():
    scripts = registered()
    assert ("store/leases.py", "RENEW_LUA") in scripts
    assert set(SEVERAL_KEYS) | SINGLE_REDIS_ONLY <= set(scripts)


@pytest.mark.parametrize(("module", "name"), registered(), ids=lambda v: v)
def test_a_script_keeps_to_one_slot(module, name):
    if (module, name) in SINGLE_REDIS_ONLY:
        text = (PACKAGE / module).read_text(encoding="utf-8")
        assert re.search(r"if not is_cluster\(\w+\):\n\s+await \w+\.register_script\(" + name + r"\)", text), name
        return
    script = source(module, name)
    if takes_one_key(script) and (module, name) not in SEVERAL_KEYS:
        return
    assert (module, name) in SEVERAL_KEYS, f"{module} {name} takes several keys: build them in SEVERAL_KEYS"
    calls = list(SEVERAL_KEYS[module, name]())
    assert calls
    for keys in calls:
        assert len(keys) >= 2 and len({key_slot(k.encode()) for k in keys}) == 1, keys
