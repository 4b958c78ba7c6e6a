"""A throwaway PostgreSQL server on 127.0.0.1 (initdb + pg_ctl in a temp dir, free port).

Used by the tests, the benchmark and the demo; never by `vigil retain` against a real
database. PostgreSQL refuses to run as root, so when we are root the data directory is
handed to the `postgres` OS user (Debian's package creates it) and the server runs as that.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

DEFAULT_BINDIRS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")


def find_bindir() -> Path | None:
    """The newest server binaries (initdb + pg_ctl), from $VIGIL_PG_BINDIR, Debian's layout or PATH."""
    candidates = [os.environ["VIGIL_PG_BINDIR"]] if os.environ.get("VIGIL_PG_BINDIR") else []
    for pattern in DEFAULT_BINDIRS:
        candidates += sorted(glob.glob(pattern), key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()] or [0],
                             reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def missing_reason() -> str | None:
    """Why a local server cannot be started here, or None."""
    if find_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed (Debian: apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' OS user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """`with LocalPostgres() as pg: pg.dsn()`: superuser `postgres`, trust auth on loopback only."""

    def __init__(self, settings: dict[str, str] | None = None):
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        self.bindir = find_bindir()
        self.settings = settings or {}
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: list[str] = []

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> LocalPostgres:
        if os.geteuid() == 0:
            import pwd
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        assert self.bindir is not None
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        options = {"listen_addresses": "127.0.0.1", "port": str(self.port), "unix_socket_directories": str(self.root),
                   "fsync": "off", "full_page_writes": "off", **self.settings}
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            for name, value in options.items():
                conf.write(f"{name} = '{value}'\n")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        return self

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} sslmode=disable"

    def server_log(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.bindir is not None and self.data.exists():
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
