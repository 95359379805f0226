"""Is a MySQL server answering where `--mysql-host`/`--mysql-port` point? Asked before TensorFlow loads.

ML Metadata's own answer to a wrong port, a stopped server or a bad password is the same line,
`mysql_real_connect failed: errno: , error: `, after TensorFlow and TFX have loaded. A MySQL server speaks
first: on connect it sends its greeting (protocol 10 and its version) or an error packet (too many
connections, host blocked). Reading it tells "nothing listens" from "something else listens" from "MySQL
refuses", in milliseconds.
"""

from __future__ import annotations

import contextlib
import socket

from pipeline.config import MySQLSettings

CONNECT_TIMEOUT_S = 5.0
MAX_GREETING_BYTES = 16384  # a greeting is some 100 bytes
EXPECTED = (
    "expected a MySQL-compatible server (MySQL 5.7/8.x or MariaDB) listening there; ML Metadata creates "
    "database {database!r} (--mysql-database) if it is missing"
)


class MySQLUnreachableError(RuntimeError):
    """The ML Metadata store named by the --mysql-* flags cannot be used; the message says why."""


def _where(settings: MySQLSettings) -> str:
    return f"{settings.host}:{settings.port} (--mysql-host/--mysql-port)"


def _receive(sock: socket.socket, raw: bytes, size: int) -> bytes:
    while len(raw) < size:
        chunk = sock.recv(size - len(raw))
        if not chunk:
            break
        raw += chunk
    return raw


def _receive_greeting(sock: socket.socket) -> tuple[bytes, bytes | None]:
    """(the bytes received, the first packet's payload or None if they are no MySQL packet). A packet is a
    3-byte little-endian length, a sequence id and the payload; a greeting's payload starts with 10 (the
    protocol version), an error's with 0xff. Anything else is answered at once, not after its 'length'."""
    raw = _receive(sock, b"", 5)
    length = int.from_bytes(raw[:3], "little")
    if len(raw) < 5 or raw[4] not in (0x0A, 0xFF) or length > MAX_GREETING_BYTES:
        sock.settimeout(0.2)  # what else it says at once, for the message
        with contextlib.suppress(OSError):
            raw += sock.recv(40)
        return raw, None
    raw = _receive(sock, raw, 4 + length)
    return raw, raw[4:] if len(raw) == 4 + length else None


def server_version(settings: MySQLSettings, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """The version the MySQL server at settings.host:port greets with; MySQLUnreachableError if none does."""
    expected = EXPECTED.format(database=settings.database)
    try:
        sock = socket.create_connection((settings.host, settings.port), timeout=timeout_s)
    except socket.gaierror as error:
        raise MySQLUnreachableError(
            f"ML Metadata: cannot resolve host {settings.host!r} (--mysql-host): {error.strerror}; {expected}"
        ) from None
    except ConnectionRefusedError:
        raise MySQLUnreachableError(
            f"ML Metadata: nothing listens at {_where(settings)}: connection refused; {expected}"
        ) from None
    except TimeoutError:
        raise MySQLUnreachableError(
            f"ML Metadata: no answer from {_where(settings)} within {timeout_s:g} s (a firewall, or a wrong "
            f"host); {expected}"
        ) from None
    except OSError as error:
        raise MySQLUnreachableError(
            f"ML Metadata: cannot connect to {_where(settings)}: {error.strerror or error}; {expected}"
        ) from None
    with sock:
        try:
            raw, payload = _receive_greeting(sock)
        except TimeoutError:
            raise MySQLUnreachableError(
                f"ML Metadata: something listens at {_where(settings)} but says nothing within "
                f"{timeout_s:g} s: not a MySQL server, which greets first; {expected}"
            ) from None
        except OSError as error:
            raise MySQLUnreachableError(
                f"ML Metadata: {_where(settings)} closed the connection: {error.strerror or error}; "
                f"{expected}"
            ) from None
    if (
        payload and payload[:1] == b"\xff" and len(payload) >= 3
    ):  # an error packet: code, then (maybe) '#'+state, message
        message = payload[3:]
        if message[:1] == b"#":
            message = message[6:]
        code = int.from_bytes(payload[1:3], "little")
        raise MySQLUnreachableError(
            f"ML Metadata: the MySQL server at {_where(settings)} refused the connection: error {code}: "
            f"{message.decode('utf-8', 'replace')}"
        )
    if payload is None or b"\x00" not in payload[1:]:
        said = f"greeted with {raw[:40]!r}" if raw else "closed the connection without a greeting"
        raise MySQLUnreachableError(
            f"ML Metadata: the server at {_where(settings)} is not MySQL: it {said}; {expected}"
        )
    version = payload[1 : payload.index(b"\x00", 1)].decode("utf-8", "replace")
    return version.removeprefix("5.5.5-")  # MariaDB's prefix for clients that parse the major version


def connect_failure_message(settings: MySQLSettings, version: str, error: Exception) -> str:
    """What to tell a user when the server greets but ML Metadata cannot connect: the credentials or the
    database, which ML Metadata does not tell apart."""
    user = repr(settings.user) if settings.user else "no user"
    return (
        f"ML Metadata: MySQL {version} at {_where(settings)} answers but ML Metadata could not connect as "
        f"{user} (--mysql-user; password from the variable --mysql-password-env names) to database "
        f"{settings.database!r} (--mysql-database). Expected that user to exist for this client's host, "
        "with that password, the mysql_native_password plugin (MySQL 8 defaults to caching_sha2_password, "
        f"which ML Metadata cannot use) and the right to create the database and its tables. ({error})"
    )
