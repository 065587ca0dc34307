"""A fix for a defect of kafka-python 3.0.12 (the pinned version) that the worker would otherwise inherit.

`kafka.net.inet.KafkaNetSocket.sock_connect` creates a non-blocking socket and returns it once connected, but
when the connect is refused, times out or is abandoned it raises (or is cancelled) without closing the socket.
The socket then stays open until the garbage collector finds it and closes it with a `ResourceWarning`: during a
broker outage every reconnect attempt leaves one behind for a while, and under load the test suite saw that
warning surface in an unrelated test (which warnings-as-errors turns into a failure).
`tests/worker/test_kafka_fixes.py` shows the leak and checks the fix.
"""

from __future__ import annotations

import socket
from typing import Any

from kafka.net.inet import KafkaNetSocket

_FIXED_MARK = "_claims_closes_failed_sockets"


def close_sockets_of_failed_connects() -> None:
    """Make a failed, timed-out or abandoned connect close its socket. Idempotent; call before creating clients."""
    original = KafkaNetSocket.sock_connect
    if getattr(original, _FIXED_MARK, False):
        return

    async def sock_connect(self: Any, net: Any, sock: socket.socket, sockaddr: Any, timeout_at: Any = None) -> Any:
        try:
            return await original(self, net, sock, sockaddr, timeout_at=timeout_at)
        except BaseException:  # a refusal, a timeout, or the connecting task being cancelled
            sock.close()
            raise

    setattr(sock_connect, _FIXED_MARK, True)
    KafkaNetSocket.sock_connect = sock_connect
