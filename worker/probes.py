"""Health and readiness, and the small HTTP server that serves them with the Prometheus metrics.

- `GET /metrics`: the registry in the Prometheus text format.
- `GET /healthz` (liveness): 200 while the loop keeps turning; 503 when it has not ticked for `stall_after_s`
  (stuck: let the orchestrator restart the process).
- `GET /readyz` (readiness): 200 while connected and consuming; 503 before start-up, during a broker outage and
  while shutting down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class HealthState:
    """Thread-safe liveness and readiness flags, written by the loop and read by the HTTP server."""

    def __init__(self, *, stall_after_s: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._stall_after_s = stall_after_s
        self._clock = clock
        self._last_tick = clock()
        self._ready = False
        self._lock = threading.Lock()

    def tick(self) -> None:
        """The loop is alive (called once per iteration)."""
        self._last_tick = self._clock()

    def set_ready(self, ready: bool) -> bool:
        """Set readiness; returns True when it changed."""
        with self._lock:
            changed = self._ready != ready
            self._ready = ready
        return changed

    @property
    def ready(self) -> bool:
        return self._ready

    def liveness(self) -> tuple[bool, str]:
        idle_s = self._clock() - self._last_tick
        if idle_s > self._stall_after_s:
            return False, f"loop stalled for {idle_s:.0f}s"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        return (True, "ready") if self._ready else (False, "not ready")

    def __repr__(self) -> str:
        return f"<HealthState ready={self._ready} live={self.liveness()[0]}>"


class ProbeServer:
    """Serves `/metrics`, `/healthz` and `/readyz` on a daemon thread. Port 0 picks a free port (see `.port`)."""

    def __init__(self, *, host: str, port: int, registry: CollectorRegistry, health: HealthState) -> None:
        handler = _handler_class(registry, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="probe-server", daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __repr__(self) -> str:
        return f"<ProbeServer port={self.port} running={self._thread.is_alive()}>"


def _handler_class(registry: CollectorRegistry, health: HealthState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, reason = health.liveness()
                self._reply(200 if ok else 503, reason.encode() + b"\n")
            elif path == "/readyz":
                ok, reason = health.readiness()
                self._reply(200 if ok else 503, reason.encode() + b"\n")
            else:
                self._reply(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            del format, args  # scrapes and probes every few seconds are not worth a log line

    return Handler
