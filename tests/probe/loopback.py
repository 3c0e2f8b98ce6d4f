"""A scripted UDP 'gateway' on 127.0.0.1 in a thread, for the probe's tests (bounded in time)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Reply = Callable[[bytes], list[bytes]]


@contextmanager
def loopback_peer(reply: Reply, *, max_datagrams: int = 100) -> Iterator[tuple[int, list[bytes]]]:
    """Yields (port, datagrams received); answers each datagram with ``reply(datagram)``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    got: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set() and len(got) < max_datagrams:
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            got.append(data)
            for d in reply(data):
                sock.sendto(d, addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield sock.getsockname()[1], got
    finally:
        stop.set()
        t.join(timeout=2)
        sock.close()
