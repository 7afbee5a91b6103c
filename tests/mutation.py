"""Mutation testing (mutmut) of the modules that carry money and identity, each against its own tests.

    python -m tests.mutation [MODULE ...] [--only FUNCTION ...]

MODULE is one of MODULES (default: all of them); --only keeps the mutants of the named functions.
Not run in CI: each mutant runs the module's tests that reach it. One module at a time, one worker.
Each module is mutated in var/mutation/<module>/ (a mutmut setup.cfg of its own beside links to
the code); a rerun tests again the survivors and the functions that changed, and keeps the other
kills (tests are only ever added to, so a kill stays a kill). Prints per module the
mutants killed and survived and how long it took; `mutmut results` in that directory lists the
survivors and `mutmut show NAME` shows one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "mutation"

# module -> (the file mutated, the tests of its endpoints and jobs)
MODULES = {
    "auth": ("jiandong/web/auth.py", ["tests/test_tokens.py"]),
    # pay/pre_order's rules live in services/orders.py too.
    "orders": ("jiandong/services/orders.py", ["tests/test_orders.py", "tests/test_order_tasks.py",
                                               "tests/test_pay.py"]),
    "payments": ("jiandong/services/payments.py", ["tests/test_pay.py", "tests/test_order_tasks.py"]),
    "verification": ("jiandong/services/verification.py", ["tests/test_phone.py"]),
    # Mutes and banned words set in the console, and the websocket server's own answers, are the handler's too.
    # (Its error paths while Redis or PostgreSQL is away are tests/test_outages.py's: too slow to run per mutant.)
    "handler": ("jiandong/realtime/handler.py", ["tests/test_realtime_input.py", "tests/test_realtime_rooms.py",
                                                 "tests/test_realtime_frames.py", "tests/test_realtime_server.py",
                                                 "tests/test_admin_chat.py", "tests/attacks/test_chat.py"]),
    # The console's gatekeepers: sessions, roles and CSRF; staff accounts; its error pages (an outage's 503).
    "console-security": ("jiandong/admin/security.py", ["tests/attacks/test_console_routes.py",
                                                        "tests/attacks/test_console.py",
                                                        "tests/test_admin_accounts.py"]),
    "staff": ("jiandong/admin/staff.py", ["tests/test_admin_accounts.py", "tests/attacks/test_console_routes.py",
                                          "tests/attacks/test_console.py"]),
    "console-errors": ("jiandong/admin/errors.py", ["tests/test_admin_accounts.py",
                                                    "tests/test_outages.py::test_the_console_answers_503_while_a_dependency_is_away"]),
    "refunds": ("jiandong/services/refunds.py", ["tests/test_refunds.py", "tests/test_admin_orders.py"]),
}
LINKED = ("jiandong", "tests", "server.py", "sql", "templates", "pytest.ini")
SETUP_CFG = """\
[mutmut]
source_paths = jiandong/
only_mutate = {path}
also_copy =
    server.py
    sql/
    templates/
    pytest.ini
# What a log line says is not what these modules carry: its wording is not mutated.
do_not_mutate_patterns = ^\\s*logger\\.
pytest_add_cli_args_test_selection =
{tests}
# Each mutant reruns pytest in one long-lived process: what an earlier run left for the garbage
# collector must not fail the next one.
pytest_add_cli_args =
    -p no:cacheprovider
    -W ignore::ResourceWarning
    -W ignore::pytest.PytestUnraisableExceptionWarning
"""
# mutmut's exit codes (mutmut.stats.status_by_exit_code): a failing test, or one that hung (the
# mutant was noticed all the same), or every test passing.
KILLED, TIMEOUT, SURVIVED = {1, 3}, {36, 24, -24, 152, 255}, {0}


def prepare(name: str) -> Path:
    path, tests = MODULES[name]
    work = WORK / name
    work.mkdir(parents=True, exist_ok=True)
    for item in LINKED:
        link = work / item
        if not link.exists():
            link.symlink_to(ROOT / item)
    config = SETUP_CFG.format(path=path, tests="\n".join(f"    {t}" for t in tests))
    setup_cfg = work / "setup.cfg"
    if setup_cfg.exists() and setup_cfg.read_text() != config:
        # Other tests now: which of them reach which function must be found out again.
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    setup_cfg.write_text(config)
    return work


def function_of(mutant: str) -> str:
    """jiandong.auth.xǁTokenStoreǁresolve__mutmut_4 -> resolve; ...payments.x_settle__mutmut_3 -> settle."""
    return mutant.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1].split("ǁ")[-1].removeprefix("x_")


def recheck_survivors(work: Path, path: str) -> None:
    """Forget the verdicts other than kills, so this run tests those mutants again."""
    meta_path = work / "mutants" / f"{path}.meta"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        codes = meta["exit_code_by_key"]
        meta["exit_code_by_key"] = {key: code if code in KILLED | TIMEOUT else None for key, code in codes.items()}
        meta_path.write_text(json.dumps(meta))


def summary(work: Path, path: str, only: list[str]) -> dict[str, int]:
    meta = json.loads((work / "mutants" / f"{path}.meta").read_text())["exit_code_by_key"]
    counts = {"killed": 0, "timeout": 0, "survived": 0, "other": 0}
    for key, code in meta.items():
        if only and function_of(key) not in only:
            continue
        counts["killed" if code in KILLED else "timeout" if code in TIMEOUT else "survived" if code in SURVIVED
               else "other"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"one of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--only", nargs="+", default=[], metavar="FUNCTION",
                        help="mutate only these functions (method names without their class)")
    args = parser.parse_args(argv)
    if unknown := set(args.modules) - set(MODULES):
        parser.error(f"unknown module(s): {', '.join(sorted(unknown))}")
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or "mutmut"
    for name in args.modules or MODULES:
        work = prepare(name)
        path = MODULES[name][0]
        module = path.removesuffix(".py").replace("/", ".")
        patterns = [f"{module}.*{function}__mutmut_*" for function in args.only] or [f"{module}.*"]
        recheck_survivors(work, path)
        started = time.monotonic()
        # The tests' own database and Redis prefix isolate the run; JIANDONG_* of a shell would not.
        env = {k: v for k, v in os.environ.items() if not k.startswith("JIANDONG_") or k.startswith("JIANDONG_TEST_")}
        done = subprocess.run([mutmut, "run", "--max-children", "1", *patterns], cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        counts = summary(work, path, args.only)
        print(f"{name}: {counts['killed']} killed, {counts['timeout']} timed out, {counts['survived']} survived, "
              f"{counts['other']} other "
              f"({path}{', only ' + ' '.join(args.only) if args.only else ''}; {time.monotonic() - started:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
