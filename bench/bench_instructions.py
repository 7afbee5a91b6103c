"""Machine instructions per request, counted by valgrind's callgrind: the match detail against the bare handler.

    python bench/bench_instructions.py [--requests 2000] [--warm 300] [--smoke]

A shared machine's other work changes how long a request takes but not how many instructions the
server runs for it, so this figure repeats where requests/s and CPU time do not (to within a few per
cent: the server's timers and background tasks run for as long as the run lasts). It counts what runs
in the process (the event loop's thread and the log writer's), not the kernel's work for its system
calls, which is about the same for both servers: one read and one write per request.

Runs `python server.py` (as deployed: access log and metrics on, uvloop when installed) and
bench/bare_server.py (plain aiohttp on asyncio, answering the same body) under
`valgrind --tool=callgrind` (Debian's package `valgrind`), on bench_content.py's database
(`jiandong_bench_content`, the small demo set is enough). Each gets --warm requests, then its counters
are zeroed (`callgrind_control -z`), it gets --requests more over 4 keep-alive connections one at a time,
and its counters are dumped. Prints instructions per request of each and their ratio (bare / server:
the share of a bare handler's rate the server would reach if instructions were all a request cost).
Under valgrind a server runs some 50 times slower: a run takes a few minutes.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

# bench/ is the script's directory, so its modules import by name.
from bench_content import DATABASE, EMBEDDED_DIR, load_demo, pick_ids
from common import bench_run, free_port, log, login, parser, request, server_pid, start

CONNECTIONS = 4
VALGRIND = ["valgrind", "--tool=callgrind", "--dump-line=no", "--collect-systime=no"]
# A server under valgrind takes a minute to start, more on a busy machine.
START_WAIT = 600.0


def send(port: int, path: str, count: int, token: str) -> None:
    """`count` GETs of `path`, over CONNECTIONS keep-alive connections in turn; exits on an answer not 200."""
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for _ in range(CONNECTIONS)]
    try:
        for n in range(count):
            conn = connections[n % CONNECTIONS]
            conn.request("GET", path, headers={"token": token})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"GET {path} on port {port}: HTTP {resp.status}")
    finally:
        for conn in connections:
            conn.close()


def counted(port: int, out_dir: Path, name: str, path: str, token: str, warm: int, requests: int) -> int:
    """Instructions the process on `port` ran for `requests` requests, after `warm` uncounted ones."""
    pid = server_pid(port)
    send(port, path, warm, token)
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    send(port, path, requests, token)
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    # callgrind_control -d writes <out-file>.<n> (the first dump is .1); wait for it to be complete.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for dump in out_dir.glob(f"callgrind.{name}.*.1"):
            text = dump.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1])
        time.sleep(0.5)
    raise SystemExit(f"no callgrind dump for {name} in {out_dir}")


def main() -> int:
    p = parser(__doc__, DATABASE)
    p.add_argument("--requests", type=int, default=2000, help="counted requests per server (default 2000)")
    p.add_argument("--warm", type=int, default=300, help="uncounted requests first (default 300)")
    args = p.parse_args()
    if args.smoke:
        args.requests, args.warm = 200, 50
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not on PATH (apt-get install valgrind)")
    with bench_run(args, DATABASE, keep_database=True, embedded_dir=EMBEDDED_DIR) as run:
        load_demo(run.env, large=False)
        competition_id, _ = pick_ids(run.env["JIANDONG_DATABASE_URL"])
        path = f"/api/v1/competition/{competition_id}"
        out_dir = run.work
        figures: dict[str, int] = {}

        port = free_port()
        log("starting server.py under callgrind (a minute or more) ...")
        env = {**run.env, "JIANDONG_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        start(run.stack, "server", [*VALGRIND, f"--callgrind-out-file={out_dir}/callgrind.server.%p", sys.executable,
                                    "server.py", "--host", "127.0.0.1", "--port", str(port)],
              env, run.work, port, ready_path="/readyz", wait=START_WAIT)
        token = login(f"http://127.0.0.1:{port}")
        body = request(f"http://127.0.0.1:{port}{path}", headers={"token": token})
        body_file = run.work / "bare-body.json"
        body_file.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        log(f"counting {args.requests} requests of {path} ...")
        figures["server"] = counted(port, out_dir, "server", path, token, args.warm, args.requests)

        bare_port = free_port()
        log("starting bare_server.py under callgrind ...")
        start(run.stack, "bare", [*VALGRIND, f"--callgrind-out-file={out_dir}/callgrind.bare.%p", sys.executable,
                                  "bench/bare_server.py", "--port", str(bare_port), "--route", "GET", path,
                                  str(body_file)],
              run.bare_env, run.work, bare_port, wait=START_WAIT)
        figures["bare"] = counted(bare_port, out_dir, "bare", path, token, args.warm, args.requests)

    per_request = {name: total / args.requests for name, total in figures.items()}
    print(f"instructions per request of GET /api/v1/competition/<id> ({args.requests} counted, callgrind)")
    print(f"bare aiohttp handler   {per_request['bare']:12,.0f}")
    print(f"server.py              {per_request['server']:12,.0f}")
    print(f"ratio bare / server    {per_request['bare'] / per_request['server']:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
