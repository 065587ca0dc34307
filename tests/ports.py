"""Free TCP ports on 127.0.0.1 for what the tests start: brokers, listeners, metrics endpoints, Prometheus.

One implementation for every test package, so that they all ask the kernel the same way (bind port 0, read the
port back) instead of each keeping its own copy.
"""

from __future__ import annotations

import contextlib
import socket


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now (all held open together, so the kernel cannot hand one out twice)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def free_port() -> int:
    """One port free right now; whoever uses it should bind it soon, since nothing reserves it."""
    (port,) = free_ports(1)
    return port
