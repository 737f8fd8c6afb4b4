"""A throwaway PostgreSQL server for the tests: the distribution's ``initdb`` and ``pg_ctl``.

Started once per test session (see the ``postgres_server`` fixture in ``conftest.py``) in a
temporary folder, on 127.0.0.1 and a free port, with ``trust`` authentication; each test
makes its own database. ``initdb`` refuses to run as root, so as root the server runs as
the ``postgres`` user that Debian's ``postgresql`` package creates.

Where no server binaries are found the PostgreSQL tests are skipped, except under CI
(``CI=true``), where that is a failure: CI installs the package (``.ci/run``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Final

# Where Debian puts each major version's server binaries; newest first.
_DEBIAN_BIN_GLOB: Final = "/usr/lib/postgresql/*/bin"
_SERVICE_USER: Final = "postgres"
_START_TIMEOUT_SECONDS: Final = 60


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, or Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent

    def major(folder: str) -> int:
        name = Path(folder).parent.name
        return int(name) if name.isdigit() else 0

    for folder in sorted(glob.glob(_DEBIAN_BIN_GLOB), key=major, reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One running server; :meth:`new_database` gives a test its own database URL."""

    def __init__(self, bin_dir: Path, *, fsync: bool = False) -> None:
        self.bin_dir = bin_dir
        self.fsync = fsync
        self.folder = Path(tempfile.mkdtemp(prefix="cometrunway-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.user = _SERVICE_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses root: the folder belongs to the service user, who runs the server.
            entry = pwd.getpwnam(_SERVICE_USER)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            self._as_user = ["runuser", "-u", _SERVICE_USER, "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as_user, *args], check=True, capture_output=True, timeout=_START_TIMEOUT_SECONDS
        )

    def start(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "--username",
            self.user,
            "--encoding=UTF8",
        )
        options = (
            f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create a fresh, empty database and return its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        return self.url(name)
