"""SIGTERM/SIGINT handling: a graceful stop on the first signal, a forced exit on a second one or at the deadline.

Real signals sent to this process; the exits are recorded instead of taken (`hard_exit`), and the faulthandler
backstop is off (it would end the test run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from worker.exit_codes import ExitCode
from worker.shutdown import ShutdownSignal, SignalWatcher, install_signal_handlers

pytestmark = pytest.mark.timeout(60)

REPO_ROOT = Path(__file__).resolve().parents[2]

Watch = Callable[..., SignalWatcher]


def wait_until(condition: Callable[[], object], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


@pytest.fixture
def watch() -> Iterator[Watch]:
    watchers: list[SignalWatcher] = []

    def install(shutdown: ShutdownSignal, **options: object) -> SignalWatcher:
        options.setdefault("backstop_s", None)
        watcher = install_signal_handlers(shutdown, **options)  # type: ignore[arg-type]
        watchers.append(watcher)
        return watcher

    yield install
    for watcher in watchers:
        watcher.close()


def test_first_signal_requests_a_stop_and_logs_it_once(watch: Watch) -> None:
    first: list[str] = []
    exits: list[int] = []
    shutdown = ShutdownSignal(grace_s=30.0)
    watch(shutdown, on_first=first.append, hard_exit=exits.append)

    os.kill(os.getpid(), signal.SIGTERM)
    wait_until(lambda: first)

    assert shutdown.requested
    assert shutdown.reason == "signal SIGTERM"
    assert first == ["SIGTERM"]
    assert exits == []


def test_the_same_signal_twice_at_once_is_one_request_and_another_signal_forces_the_exit(watch: Watch) -> None:
    forced: list[str] = []
    exits: list[int] = []
    shutdown = ShutdownSignal(grace_s=30.0)
    watcher = watch(shutdown, on_forced=forced.append, hard_exit=exits.append)

    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)  # the same signal delivered twice (process and process group)
    os.kill(os.getpid(), signal.SIGINT)  # an operator insisting
    wait_until(lambda: exits)

    assert exits == [ExitCode.FORCED_EXIT]
    assert watcher.forced == "SIGINT"  # not the duplicate SIGTERM
    assert forced == ["SIGINT"]


def test_the_same_signal_again_after_the_window_forces_the_exit(watch: Watch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("worker.shutdown.DUPLICATE_SIGNAL_WINDOW_S", 0.0)
    exits: list[int] = []
    watcher = watch(ShutdownSignal(grace_s=30.0), hard_exit=exits.append)

    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)
    wait_until(lambda: exits)

    assert exits == [ExitCode.FORCED_EXIT]
    assert watcher.forced == "SIGTERM"


def test_the_deadline_forces_the_exit_when_the_grace_period_runs_out(
    watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worker.shutdown.WATCHDOG_MARGIN_S", 0.0)
    forced: list[str] = []
    exits: list[int] = []
    watch(ShutdownSignal(grace_s=0.05), on_forced=forced.append, hard_exit=exits.append)

    os.kill(os.getpid(), signal.SIGTERM)
    wait_until(lambda: exits)

    assert exits == [ExitCode.FORCED_EXIT]
    assert forced == ["grace period exceeded"]


def test_a_forced_exit_does_not_wait_for_a_log_write_that_never_ends(
    watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a log stream whose lock another thread holds for ever (a write stuck on a full pipe)
    monkeypatch.setattr("worker.shutdown.WATCHDOG_MARGIN_S", 0.0)
    monkeypatch.setattr("worker.shutdown.REPORT_TIMEOUT_S", 0.1)
    stuck = threading.Event()
    exits: list[int] = []
    watch(ShutdownSignal(grace_s=0.05), on_forced=lambda why: stuck.wait(), hard_exit=exits.append)

    # When the deadline passes
    os.kill(os.getpid(), signal.SIGTERM)
    wait_until(lambda: exits)

    # Then the exit is taken anyway
    assert exits == [ExitCode.FORCED_EXIT]
    stuck.set()


def test_a_signal_that_arrives_while_the_main_thread_holds_the_log_lock_is_still_handled(watch: Watch) -> None:
    # A signal handler runs in the main thread wherever it is: if it logged, it would wait for the log lock that
    # its own thread holds mid-write, for ever (the hang `make chaos` found). The log call must run elsewhere.
    log_lock = threading.Lock()
    handled: list[tuple[str, bool]] = []

    def log_shutdown_requested(name: str) -> None:
        acquired = log_lock.acquire(timeout=5.0)
        handled.append((threading.current_thread().name, acquired))
        if acquired:
            log_lock.release()

    shutdown = ShutdownSignal(grace_s=30.0)
    watch(shutdown, on_first=log_shutdown_requested)

    with log_lock:  # the main thread in the middle of writing a log line
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: shutdown.requested)
    wait_until(lambda: handled)

    assert handled == [("signal-report", True)]


def test_close_restores_the_previous_handlers(watch: Watch) -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    watcher = watch(ShutdownSignal(grace_s=30.0))
    assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]

    watcher.close()

    assert {signum: signal.getsignal(signum) for signum in before} == before


# A worker-like process: logs as fast as it can from the main thread (so a signal nearly always lands mid-write)
# until a stop is requested, then logs once more and exits 0.
_BUSY_LOGGER = textwrap.dedent(
    """
    import sys
    import structlog
    from worker.logs import configure_logging
    from worker.settings import LogFormat
    from worker.shutdown import ShutdownSignal, install_signal_handlers

    configure_logging(LogFormat.JSON, "info", static_context={"worker_id": "test"})
    log = structlog.get_logger()
    shutdown = ShutdownSignal(grace_s=30.0)
    install_signal_handlers(shutdown, on_first=lambda name: log.info("worker.shutdown_requested", signal=name))
    print("ready", flush=True)
    while not shutdown.requested:
        log.info("batch.processed", records=1)
    log.info("worker.stopped")
    """
)


@pytest.mark.parametrize("attempt", range(8))
def test_a_process_logging_from_its_main_thread_stops_cleanly_on_sigterm(attempt: int, tmp_path: Path) -> None:
    log_path = tmp_path / "worker.log"
    with (
        log_path.open("wb") as log_file,
        subprocess.Popen(
            [sys.executable, "-c", _BUSY_LOGGER], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log_file
        ) as process,
    ):
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == b"ready\n"
            time.sleep(0.01 * attempt)  # a different moment of the write each time
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
        finally:
            process.kill()
            process.wait()
    lines = log_path.read_bytes().splitlines()
    assert code == 0
    assert sum(b'"event": "worker.shutdown_requested"' in line for line in lines) == 1
    assert b'"event": "worker.stopped"' in lines[-1]


# A process whose forced exit does not happen (as if the exit itself hung): the faulthandler backstop ends it.
_STUCK_EXIT = textwrap.dedent(
    """
    import time
    import worker.shutdown as shutdown_module
    from worker.shutdown import ShutdownSignal, install_signal_handlers

    shutdown_module.WATCHDOG_MARGIN_S = 0.0
    install_signal_handlers(ShutdownSignal(grace_s=0.1), hard_exit=lambda code: None, backstop_s=0.5)
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_a_process_that_outlives_its_forced_exit_is_ended_with_every_thread_stack() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _STUCK_EXIT], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == b"ready\n"
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert stderr.startswith(b"Timeout")
    assert b"(most recent call first)" in stderr  # the stacks that explain the hang


def test_the_shutdown_deadline_counts_down_from_the_request() -> None:
    now = [0.0]
    shutdown = ShutdownSignal(grace_s=20.0, clock=lambda: now[0])
    assert shutdown.remaining_s() is None
    assert shutdown.request("test")
    assert not shutdown.request("again")
    now[0] = 15.0
    assert shutdown.remaining_s() == pytest.approx(5.0)
