"""A throwaway MariaDB server (MySQL-compatible, as ML Metadata on a Kubeflow cluster uses) for tests.

Nothing is installed: Debian's packages are fetched with `apt-get download` and unpacked with `dpkg -x` into a
cache (~/.cache/pin2vec/mariadb, or $PIN2VEC_MARIADB_CACHE), once per machine. Each server gets its own
datadir, socket and free port, listens on 127.0.0.1 only, and is stopped (its whole process group) on exit.

    python -m tests.e2e.mariadb
fetches the packages (if needed) and serves until Ctrl-C, printing the `pin2vec run` flags that use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from pipeline.config import MySQLSettings
from pipeline.loopback_ports import free_loopback_ports
from pipeline.mysql_check import MySQLUnreachableError, server_version
from pipeline.portable_beam import stop_process_group

# The server, its client (mariadb-install-db runs my_print_defaults; users are created with `mariadb`), and
# the libraries a minimal Debian 12 lacks (the others, libssl3, libpcre2 and the like, come with the system).
PACKAGES = ("mariadb-server-core", "mariadb-client-core", "libaio1", "liburing2", "libnuma1")
READY_SECONDS = 60.0
USER, PASSWORD = "pin2vec", "pin2vec-test-password"


class MariaDBUnavailable(RuntimeError):
    """The binaries could not be obtained here (no apt, no network): a test skips with this message."""


def cache_dir() -> str:
    default = os.path.join(os.path.expanduser("~"), ".cache", "pin2vec", "mariadb")
    return os.environ.get("PIN2VEC_MARIADB_CACHE", default)


def _own_apt_state(cache: str) -> list[str]:
    """apt-get options that keep its package lists and their binary cache under `cache`, not the system's."""
    lists, binary = os.path.join(cache, "apt-lists"), os.path.join(cache, "apt-cache")
    os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
    os.makedirs(binary, exist_ok=True)
    return ["-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={binary}"]


def _apt(options: list[str], *command: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["apt-get", *options, *command], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _last_lines(text: str, count: int = 2) -> str:
    return " / ".join(text.strip().splitlines()[-count:]) or "no message"


def fetch_mariadb(cache: str | None = None) -> str:
    """The unpacked packages' root (with usr/sbin/mariadbd), fetched on the first call on a machine.

    apt-get reads the system's package lists; where they are missing or stale (a fresh image), it downloads
    its own into the cache, so the system is never changed."""
    cache = cache or cache_dir()
    root = os.path.join(cache, "root")
    if os.path.isfile(os.path.join(root, "complete")):
        return root
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise MariaDBUnavailable("MariaDB: apt-get and dpkg are needed to fetch Debian's mariadb-server-core")
    os.makedirs(cache, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        debs = os.path.join(work, "debs")
        os.makedirs(debs)
        first = _apt([], "download", *PACKAGES, cwd=debs)
        if first.returncode != 0:  # no or stale system lists: fetch lists of our own into the cache
            options = _own_apt_state(cache)
            update = _apt(options, "update")
            second = _apt(options, "download", *PACKAGES, cwd=debs)
            if second.returncode != 0:
                raise MariaDBUnavailable(
                    f"MariaDB: `apt-get download {' '.join(PACKAGES)}` failed with the system's package "
                    f"lists ({_last_lines(first.stderr)}) and with lists of its own "
                    f"({_last_lines(second.stderr)}; apt-get update: {_last_lines(update.stderr)})"
                )
        unpacked = os.path.join(work, "root")
        for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
            subprocess.run(["dpkg", "-x", deb, unpacked], check=True, capture_output=True, timeout=120)
        missing = _missing_libraries(unpacked)
        if missing:
            raise MariaDBUnavailable(f"MariaDB: mariadbd needs libraries this machine lacks: {missing}")
        open(os.path.join(unpacked, "complete"), "w").close()
        with contextlib.suppress(OSError):  # another process finished first: its copy is as good
            os.rename(unpacked, root)
    return root


def _environment(root: str) -> dict[str, str]:
    libs = os.pathsep.join(glob.glob(os.path.join(root, "usr", "lib", "*-linux-gnu")))
    return {
        **os.environ,
        "LD_LIBRARY_PATH": os.pathsep.join(filter(None, (libs, os.environ.get("LD_LIBRARY_PATH")))),
    }


def _missing_libraries(root: str) -> list[str]:
    out = subprocess.run(
        ["ldd", os.path.join(root, "usr", "sbin", "mariadbd")],
        env=_environment(root),
        capture_output=True,
        text=True,
    ).stdout
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


@dataclasses.dataclass(frozen=True)
class MariaDBServer:
    port: int
    pid: int
    datadir: str
    socket: str
    log: str
    version: str
    user: str = USER
    password: str = PASSWORD
    host: str = "127.0.0.1"

    def settings(self, database: str) -> MySQLSettings:
        return MySQLSettings(
            host=self.host, port=self.port, database=database, user=self.user, password=self.password
        )


def _user_flag() -> list[str]:
    """mariadbd refuses to run as root unless told to (CI machines run tests as root)."""
    return [f"--user={getpass.getuser()}"] if os.geteuid() == 0 else []


@contextlib.contextmanager
def mariadb_server(root: str, work_dir: str | None = None) -> Iterator[MariaDBServer]:
    """A MariaDB server on 127.0.0.1 with a user (USER, PASSWORD) that may create databases; stopped on
    exit."""
    usr = os.path.join(root, "usr")
    env = _environment(root)
    with tempfile.TemporaryDirectory(prefix="mariadb-", dir=work_dir) as work:
        datadir, sock, log = (os.path.join(work, name) for name in ("data", "mysqld.sock", "mysqld.log"))
        subprocess.run(
            [
                os.path.join(usr, "bin", "mariadb-install-db"),
                "--no-defaults",
                f"--basedir={usr}",
                f"--datadir={datadir}",
                *_user_flag(),
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        (port,) = free_loopback_ports()
        process = subprocess.Popen(
            [
                os.path.join(usr, "sbin", "mariadbd"),
                "--no-defaults",
                f"--basedir={usr}",
                f"--lc-messages-dir={os.path.join(usr, 'share', 'mysql')}",
                f"--datadir={datadir}",
                f"--socket={sock}",
                f"--pid-file={os.path.join(work, 'mysqld.pid')}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                f"--log-error={log}",
                *_user_flag(),
                # A test server: small, and no fsync per commit (ML Metadata commits often).
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--skip-log-bin",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, stopped as one
        )
        try:
            version = _wait_ready(process, MySQLSettings(host="127.0.0.1", port=port, database=""), log)
            statements = (
                f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; "
                f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1';"
            )
            subprocess.run(
                [
                    os.path.join(usr, "bin", "mariadb"),
                    "--no-defaults",
                    f"--socket={sock}",
                    "-uroot",
                    "-e",
                    statements,
                ],
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            yield MariaDBServer(port, process.pid, datadir, sock, log, version)
        finally:
            stop_process_group(process)


def _wait_ready(process: subprocess.Popen, settings: MySQLSettings, log: str) -> str:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"mariadbd exited with {process.returncode}: {_tail(log)}")
        try:
            return server_version(settings, timeout_s=2.0)
        except MySQLUnreachableError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd not ready in {READY_SECONDS:g} s: {_tail(log)}") from None
            time.sleep(0.1)


def _tail(path: str) -> str:
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as f:
        return f.read()[-2000:]
    return "(no log)"


def main() -> int:
    root = fetch_mariadb()
    with mariadb_server(root) as server:
        print(
            f"MariaDB {server.version} on 127.0.0.1:{server.port} (Ctrl-C stops it). Run with:\n"
            f"  PIN2VEC_MYSQL_PASSWORD={server.password} pin2vec run ... --mysql-host {server.host} "
            f"--mysql-port {server.port} --mysql-user {server.user}",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
