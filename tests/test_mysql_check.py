"""`pin2vec run --mysql-*` without a usable server: a clear error in about a second, naming the flags and what
was expected, before TensorFlow loads. Real sockets on loopback; no MySQL server needed."""

import contextlib
import socket
import threading
import time

import pytest

from pipeline import cli
from pipeline.config import MySQLSettings
from pipeline.loopback_ports import free_loopback_ports
from pipeline.mysql_check import MySQLUnreachableError, server_version
from tests.e2e.tiny_log import write_tiny_log


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_loopback_ports()[0]


@contextlib.contextmanager
def _listener(greeting: bytes | None):
    """A loopback server that sends `greeting` to each client (None: says nothing) and then waits."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            with client:
                if greeting is not None:
                    client.sendall(greeting)
                stop.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def _packet(payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + b"\x00" + payload


def test_run_with_no_server_fails_fast_naming_the_flags(tmp_path, capsys):
    events = tmp_path / "events.tsv"
    write_tiny_log(events)
    port = _closed_port()
    argv = ["run", "--events", str(events), "--output-dir", str(tmp_path / "out")]
    argv += ["--mysql-host", "127.0.0.1", "--mysql-port", str(port), "--mysql-database", "lineage"]
    started = time.monotonic()
    assert cli.main(argv) == 1
    seconds = time.monotonic() - started
    err = capsys.readouterr().err
    assert seconds < 5, f"took {seconds:.1f} s"
    assert f"127.0.0.1:{port} (--mysql-host/--mysql-port)" in err
    assert "connection refused" in err and "expected a MySQL-compatible server" in err
    assert "'lineage' (--mysql-database)" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_something_else_listening_is_not_taken_for_mysql():
    refusal = r"is not MySQL: it greeted with b'HTTP/1.1 400"
    with (
        _listener(b"HTTP/1.1 400 Bad Request\r\n\r\n") as port,
        pytest.raises(MySQLUnreachableError, match=refusal),
    ):
        server_version(MySQLSettings(host="127.0.0.1", port=port, database="d"))


def test_a_silent_server_is_reported_after_the_timeout():
    silence = r"says nothing within 0.3 s: not a MySQL server"
    with _listener(None) as port, pytest.raises(MySQLUnreachableError, match=silence):
        server_version(MySQLSettings(host="127.0.0.1", port=port, database="d"), timeout_s=0.3)


def test_mysqls_own_refusal_is_passed_on():
    refusal = _packet(b"\xff" + (1040).to_bytes(2, "little") + b"#08004Too many connections")
    message = r"refused the connection: error 1040: Too many connections"
    with _listener(refusal) as port, pytest.raises(MySQLUnreachableError, match=message):
        server_version(MySQLSettings(host="127.0.0.1", port=port, database="d"))


def test_a_mysql_greeting_gives_the_server_version():
    greeting = _packet(b"\x0a" + b"5.5.5-10.11.19-MariaDB\x00" + b"\x01\x00\x00\x00" + b"scramble\x00")
    with _listener(greeting) as port:
        # MariaDB's '5.5.5-' (for clients that parse the major version) is not part of its version.
        assert server_version(MySQLSettings(host="127.0.0.1", port=port, database="d")) == "10.11.19-MariaDB"
