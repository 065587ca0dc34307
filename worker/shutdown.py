"""Ordered, bounded shutdown: the first SIGTERM/SIGINT sets a flag, the second one exits at once.

The loop checks the flag between batches: it finishes the batch in hand (produce, acknowledgements, commit),
then closes. If that takes longer than the grace period (plus a small margin), the process ends with
`ExitCode.FORCED_EXIT`, whatever the loop is blocked on.

Why a thread and not the signal handler: Python runs a signal handler in the main thread between two bytecodes,
wherever the main thread happens to be, possibly inside `print` with the log stream's lock held. A handler that
logs (or starts a thread, or sets a `threading.Event`) can then wait for a lock its own thread holds: the worker
hung for ever on a SIGTERM that arrived while it was writing a log line (seen in `make chaos`, stacks taken with
py-spy). So the handlers here do nothing; the interpreter's C-level handler writes the signal number to a pipe
(`signal.set_wakeup_fd`), and a watcher thread does the rest: logs, sets the flag, enforces the deadline.

Last resort: from the first signal, `faulthandler` (a C thread that needs no interpreter lock) dumps every
thread's stack to stderr and ends the process with exit code 1 if it still runs `BACKSTOP_S` after the
deadline: a hang the watcher cannot break (a thread holding the interpreter lock, or one during interpreter
teardown) ends, with the stacks to explain it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from worker.exit_codes import ExitCode

# Seconds past the grace period before the watcher pulls the plug: leaves the loop's own deadline-bounded
# shutdown a moment to finish and exit cleanly first.
WATCHDOG_MARGIN_S = 1.0
# A repeat of the first signal within this many seconds is one stop request delivered twice (e.g. GNU `timeout`
# and some supervisors signal both the process and its process group), not an operator insisting.
DUPLICATE_SIGNAL_WINDOW_S = 1.0
# Seconds after the watcher's deadline before faulthandler ends a process the watcher could not end.
BACKSTOP_S = 10.0
# How long the watcher waits for a log line (or the flush of stdout/stderr): a thread stuck in a write holds the
# stream's lock, and neither the stop request nor a forced exit may wait behind it.
REPORT_TIMEOUT_S = 1.0

_HANDLED = (signal.SIGTERM, signal.SIGINT)


def _hard_exit(code: int) -> None:
    os._exit(code)


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


class ShutdownSignal:
    """A thread-safe stop flag with a deadline: `request()` once, `requested` and `remaining_s()` to obey it."""

    def __init__(self, *, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._grace_s = grace_s
        self._clock = clock
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._reason = ""

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def grace_s(self) -> float:
        return self._grace_s

    def request(self, reason: str) -> bool:
        """Ask the loop to stop; returns False if a stop was already requested (the caller may escalate)."""
        with self._lock:
            if self._event.is_set():
                return False
            self._reason = reason
            self._deadline = self._clock() + self._grace_s
            self._event.set()
            return True

    def remaining_s(self) -> float | None:
        """Seconds left of the grace period, or None when no stop was requested."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock())

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to `timeout_s`, waking early when a stop is requested; returns `requested`."""
        return self._event.wait(timeout_s)

    def __repr__(self) -> str:
        return f"<ShutdownSignal requested={self.requested} reason={self._reason!r} remaining_s={self.remaining_s()}>"


def _ignore(signum: int, frame: FrameType | None) -> None:
    # Installed so that SIGTERM/SIGINT no longer end the process (or raise KeyboardInterrupt); the work is done
    # by the watcher thread, which the wakeup pipe has already woken before this runs.
    del signum, frame


class SignalWatcher:
    """Turns SIGTERM/SIGINT into a graceful stop, on a thread of its own (see the module docstring).

    First signal: `on_first(name)`, then `shutdown.request(...)`, and the deadline (grace + `WATCHDOG_MARGIN_S`)
    starts.
    The same signal again within `DUPLICATE_SIGNAL_WINDOW_S`: ignored (one request delivered twice). Any other
    signal, or the deadline passing: `on_forced(why)`, then `hard_exit(ExitCode.FORCED_EXIT)`.
    `backstop_s`: the faulthandler last resort after the deadline (None: not armed). Build with
    `install_signal_handlers`; `close()` restores what was there before (tests).
    """

    def __init__(
        self,
        shutdown: ShutdownSignal,
        *,
        on_first: Callable[[str], None] | None = None,
        on_forced: Callable[[str], None] | None = None,
        hard_exit: Callable[[int], None] = _hard_exit,
        backstop_s: float | None = BACKSTOP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shutdown = shutdown
        self._on_first = on_first
        self._on_forced = on_forced
        self._hard_exit = hard_exit
        self._backstop_s = backstop_s
        self._clock = clock
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)  # the C-level handler must never block on it
        self._previous_handlers: dict[int, Any] = {}
        self._previous_wakeup_fd = -1
        self._thread = threading.Thread(target=self._watch, name="signal-watcher", daemon=True)
        self._closed = False
        self.forced = ""  # why the exit was forced, once it was

    def install(self) -> SignalWatcher:
        """Install the handlers and start the watcher. Must be called from the main thread."""
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in _HANDLED:
            self._previous_handlers[signum] = signal.signal(signum, _ignore)
        self._thread.start()
        return self

    def close(self) -> None:
        """Restore the previous handlers and wakeup fd and stop the watcher (main thread only)."""
        if self._closed:
            return
        self._closed = True
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        if self._backstop_s is not None:
            faulthandler.cancel_dump_traceback_later()
        with contextlib.suppress(OSError):
            os.write(self._write_fd, b"\0")  # wakes the watcher, which then ends
        self._thread.join(5.0)
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _watch(self) -> None:
        deadline: float | None = None
        first_signum = 0
        first_at = 0.0
        while True:
            timeout = None if deadline is None else max(0.0, deadline - self._clock())
            readable, _, _ = select.select([self._read_fd], [], [], timeout)
            if not readable:
                self._force("grace period exceeded")
                return
            data = os.read(self._read_fd, 64)
            if not data or self._closed:
                return
            for signum in data:
                if signum not in _HANDLED:
                    continue  # another signal with a Python handler (a test runner's): not ours
                name = signal.Signals(signum).name
                if not first_signum:
                    first_signum, first_at = signum, self._clock()
                    deadline = first_at + self._shutdown.grace_s + WATCHDOG_MARGIN_S
                    if self._backstop_s is not None:
                        faulthandler.dump_traceback_later(deadline - first_at + self._backstop_s, exit=True)
                    # Logged before the flag is set, so that it comes before the loop's last lines.
                    _call_bounded(self._on_first, name)
                    self._shutdown.request(f"signal {name}")
                elif signum == first_signum and self._clock() - first_at < DUPLICATE_SIGNAL_WINDOW_S:
                    continue
                else:
                    self._force(name)
                    return

    def _force(self, why: str) -> None:
        self.forced = why
        _call_bounded(self._on_forced, why)
        _call_bounded(_flush_standard_streams)
        self._hard_exit(ExitCode.FORCED_EXIT)

    def __repr__(self) -> str:
        return f"<SignalWatcher alive={self._thread.is_alive()} forced={self.forced!r} shutdown={self._shutdown!r}>"


def _call_bounded(function: Callable[..., None] | None, *args: str) -> None:
    if function is None:
        return
    caller = threading.Thread(target=function, args=args, name="signal-report", daemon=True)
    caller.start()
    caller.join(REPORT_TIMEOUT_S)


def install_signal_handlers(
    shutdown: ShutdownSignal,
    *,
    on_first: Callable[[str], None] | None = None,
    on_forced: Callable[[str], None] | None = None,
    hard_exit: Callable[[int], None] = _hard_exit,
    backstop_s: float | None = BACKSTOP_S,
    clock: Callable[[], float] = time.monotonic,
) -> SignalWatcher:
    """SIGTERM/SIGINT: the first requests a graceful stop and starts the deadline; a second exits at once.

    The same signal again within `DUPLICATE_SIGNAL_WINDOW_S` counts as a duplicate delivery and is ignored.
    Must be called from the main thread. `on_first`/`on_forced` get the signal name or the reason (for logging);
    they run on the watcher thread, never inside a signal handler.
    """
    return SignalWatcher(
        shutdown, on_first=on_first, on_forced=on_forced, hard_exit=hard_exit, backstop_s=backstop_s, clock=clock
    ).install()
