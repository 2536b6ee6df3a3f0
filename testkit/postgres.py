"""A throwaway PostgreSQL cluster for tests and benches: Debian's postgresql package, `initdb` and `pg_ctl` run
as the postgres user on a free loopback port, in a temporary directory owned by postgres.

One cluster per test session (tests/conftest.py `postgres`); each test takes a database of its own
(`Cluster.database()`), so `make test` needs no PostgreSQL server running on the machine. We run as root in CI
and on the developers' machines: the server refuses to run as root, so every server command goes through
`runuser -u postgres --`. Trust authentication on 127.0.0.1 only, as the user `postgres`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from sim.broker import free_port

PG_USER = "postgres"


class ClusterError(RuntimeError):
    """The cluster could not be made or started."""


def pg_bindir() -> Path:
    """Debian's server binaries (/usr/lib/postgresql/<major>/bin), the newest installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise ClusterError("PostgreSQL is not installed: run `make setup` (or `sudo apt-get install -y postgresql`)")
    return Path(found[-1]).parent


def _as_postgres(*cmd: str) -> list[str]:
    if os.geteuid() != 0:
        return list(cmd)  # a developer running as themselves: the cluster is theirs
    return ["runuser", "-u", PG_USER, "--", *cmd]


class Cluster:
    """`with Cluster() as pg:` a fresh cluster on 127.0.0.1:pg.port; `pg.database()` -> a URL of a new database.

    `durable=False` (tests) turns fsync off: a test cluster need not survive a power cut. Benches keep it on."""

    def __init__(self, durable: bool = False, port: int | None = None) -> None:
        self.port = port or free_port()
        self.durable = durable
        self._tmp = tempfile.TemporaryDirectory(prefix="checkpoint-pg-")
        self.root = Path(self._tmp.name)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._names = itertools.count(1)
        self.bindir = pg_bindir()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(_as_postgres(*cmd), capture_output=True, text=True, cwd=self.root, check=False)
        if done.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> Cluster:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        bindir = self.bindir
        self._run(str(bindir / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-instructions")  # fmt: skip
        self.restart()
        return self

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: `fast` (clean), `immediate` (as a crash: recovery at the next start)."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Start the server (again after stop(): same data, same port); returns once it takes connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
            f" -c fsync={'on' if self.durable else 'off'} -c max_connections=60 -c shared_buffers=64MB"
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "30", "start")  # fmt: skip

    def database(self, name: str | None = None) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = name or f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self._tmp.cleanup()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
