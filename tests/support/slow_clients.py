"""Slow clients ("slowloris"): connections that start a request and never finish it."""

from __future__ import annotations

import socket


def slow_clients(url: str, count: int) -> list[socket.socket]:
    """`count` connections that send the start of a request head and never the rest."""
    host, port = url.removeprefix("http://").split(":")
    connections = []
    for _ in range(count):
        connection = socket.create_connection((host, int(port)))
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        connection.setblocking(False)
        connections.append(connection)
    return connections


def closed_by_peer(connection: socket.socket) -> bool:
    try:
        return connection.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
