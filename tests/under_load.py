"""The suite (or part of it) run while every core is busy, the way a shared CI machine or a laptop compiling
beside it runs it: a test that depends on timing fails here first.

    python -m tests.under_load [--burners N] [--runs K] [PYTEST ARGS ...]

Starts N processes (default: one per core) that spin on the CPU, not niced (they compete for it as a busy
neighbour would), then runs pytest K times
(default 1) with the arguments given, stopping at the first failing run. Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def burn(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 1, help="CPU burners (default: one per core)")
    parser.add_argument("--runs", type=int, default=1, help="runs of pytest in a row (default 1)")
    args, pytest_args = parser.parse_known_args(argv)
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=burn, args=(stop,), daemon=True) for _ in range(args.burners)]
    for p in burners:
        p.start()
    status = 0
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            status = subprocess.call([sys.executable, "-m", "pytest", *pytest_args])
            print(f"under load ({args.burners} burners): run {run} of {args.runs} ended with {status} "
                  f"in {time.monotonic() - started:.0f} s", flush=True)
            if status != 0:
                break
    finally:
        stop.set()
        for p in burners:
            p.join(5)
    return status


if __name__ == "__main__":
    sys.exit(main())
