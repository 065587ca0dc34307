"""`claims-worker run` as real subprocesses, configured through `CLAIMS_*` variables, with their JSON logs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.broker import REPO_ROOT, free_port
from worker.topic_set import TopicSet

# Every worker of the harness: failover within seconds (the broker's minimum session timeout is 6 s), and a
# killed exactly-once worker's open transaction aborted by the coordinator within seconds rather than a minute.
# Claim history is on (the worker's default); its member-key secret is a fixed test value (the harness' claims
# carry fictional member ids only).
BASE_SETTINGS = {
    "CLAIMS_HISTORY_KEY": "chaos-history-key-not-a-secret",
    "CLAIMS_SESSION_TIMEOUT_MS": "6000",
    "CLAIMS_HEARTBEAT_INTERVAL_MS": "1000",
    "CLAIMS_TRANSACTION_TIMEOUT_MS": "10000",
    "CLAIMS_SHUTDOWN_GRACE_S": "20",
    "CLAIMS_LOG_FORMAT": "json",
    "CLAIMS_LOG_LEVEL": "info",
    "CLAIMS_METRICS_HOST": "127.0.0.1",
}


# The worker's own entry point, and the harness' wrapper of it that arms one fault (chaos/faulty_worker.py).
WORKER_MODULE = "worker.cli"
FAULTY_WORKER_MODULE = "chaos.faulty_worker"


class WorkerProcess:
    """One `claims-worker run` process; its stdout and stderr (JSON log lines) go to `log_path`.

    `module` is what `python -m` runs with the argument `run`: the worker's CLI, or `chaos.faulty_worker` (the same
    CLI with a fault armed by the `CHAOS_*` variables of `settings`).
    """

    def __init__(
        self,
        name: str,
        bootstrap: str,
        topics: TopicSet,
        log_path: Path,
        settings: dict[str, str],
        *,
        module: str = WORKER_MODULE,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.metrics_port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith(("CLAIMS_", "CHAOS_"))}
        env.update(BASE_SETTINGS)
        env.update(topics.env())
        env.update(
            {
                "CLAIMS_BOOTSTRAP_SERVERS": bootstrap,
                "CLAIMS_METRICS_PORT": str(self.metrics_port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(settings)
        self.grace_s = float(env["CLAIMS_SHUTDOWN_GRACE_S"])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = log_path.open("ab")
        # A session of its own: a Ctrl-C meant for the harness does not reach the workers behind its back.
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, one of two modules of this repository
            [sys.executable, "-m", module, "run"],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        self.peak_rss_mb = 0.0
        self._events: list[dict[str, Any]] = []
        self._read_bytes = 0

    # --- logs -----------------------------------------------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        """Every JSON log line so far (read incrementally)."""
        with self.log_path.open("rb") as log:
            log.seek(self._read_bytes)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._read_bytes += len(complete)
        for line in complete.splitlines():
            if line.startswith(b"{"):
                with contextlib.suppress(ValueError):
                    self._events.append(json.loads(line))
        return self._events

    def named(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.events() if line.get("event") == event]

    def records_processed(self) -> int:
        return sum(int(line.get("records", 0)) for line in self.named("batch.processed"))

    def wait_until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll `condition` every 50 ms for up to `timeout_s`; raises if it never holds or the worker exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                raise ScenarioError(f"{self.name} exited with {self.process.returncode} while waiting for {what}")
            time.sleep(0.05)
        raise ScenarioError(f"{self.name}: no {what} within {timeout_s:.0f}s (log: {self.log_path})")

    def wait_for_batches(self, count: int = 1, timeout_s: float = 90.0) -> None:
        self.wait_until(lambda: len(self.named("batch.processed")) >= count, timeout_s, f"{count} processed batch(es)")

    # --- signals ----------------------------------------------------------------------------------------------------

    def _remember_rss(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)

    def _kill_group(self) -> None:
        # The worker leads its own process group (start_new_session): SIGKILL reaches it and any child process it
        # started, as when a container is killed.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def kill9(self) -> int:
        """SIGKILL the worker and its children and reap it; returns the exit status (-9)."""
        self._remember_rss()
        self._kill_group()
        code = self.process.wait(timeout=30)
        self._log_file.close()
        return code

    def terminate(self) -> tuple[int, float]:
        """SIGTERM and wait up to the grace period plus a margin; returns (exit code, seconds to exit).

        A worker that outlives that is killed (its exit code is then -9, which the scenario reports as a problem).
        """
        self._remember_rss()
        began = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=self.grace_s + 15)
        except subprocess.TimeoutExpired:
            self._kill_group()
            code = self.process.wait(timeout=30)
        self._kill_group()  # children it may have left behind
        self._log_file.close()
        return code, time.monotonic() - began

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code once the process ended by itself within `timeout_s`, else None (still running)."""
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        self._kill_group()  # children it may have left behind
        self._log_file.close()
        return code

    def ensure_stopped(self) -> None:
        """Kill whatever is still running, children included (every exit path of the harness calls this)."""
        self._kill_group()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        self._log_file.close()


class ScenarioError(RuntimeError):
    """A scenario could not be carried out as planned (a worker died early, a wait ran out)."""
