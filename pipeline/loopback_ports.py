"""Free TCP ports on loopback, for the local servers the tests, benches and the Flink cluster start.

All n sockets are held open until every port is known, so the n ports differ from each other. The ports are
free when returned, not reserved: a caller binds them soon after.
"""

from __future__ import annotations

import socket


def free_loopback_ports(n: int = 1) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
