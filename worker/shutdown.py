"""Ordered, bounded shutdown: the first SIGTERM/SIGINT sets a flag, the second one exits at once.

The loop checks the flag between batches: it finishes the batch in hand (produce, acknowledgements, commit),
then closes. A watchdog thread ends the process with `ExitCode.FORCED_EXIT` if that takes longer than the grace
period (plus a small margin), whatever the loop is blocked on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from worker.exit_codes import ExitCode

# Seconds past the grace period before the watchdog pulls the plug: leaves the loop's own deadline-bounded
# shutdown a moment to finish and exit cleanly first.
WATCHDOG_MARGIN_S = 1.0
# A repeat of the first signal within this many seconds is one stop request delivered twice (e.g. GNU `timeout`
# and some supervisors signal both the process and its process group), not an operator insisting.
DUPLICATE_SIGNAL_WINDOW_S = 1.0


def _hard_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


class ShutdownSignal:
    """A thread-safe stop flag with a deadline: `request()` once, `requested` and `remaining_s()` to obey it."""

    def __init__(self, *, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._grace_s = grace_s
        self._clock = clock
        self._event = threading.Event()
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


def install_signal_handlers(
    shutdown: ShutdownSignal,
    *,
    on_first: Callable[[str], None] | None = None,
    on_forced: Callable[[str], None] | None = None,
    hard_exit: Callable[[int], None] = _hard_exit,
) -> None:
    """SIGTERM/SIGINT: the first requests a graceful stop and arms the watchdog; a second exits at once.

    The same signal again within `DUPLICATE_SIGNAL_WINDOW_S` counts as a duplicate delivery and is ignored.

    Must be called from the main thread. `on_first`/`on_forced` get the signal name (for logging).
    """

    first: dict[str, float] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        del frame
        name = signal.Signals(signum).name
        if shutdown.request(f"signal {name}"):
            first["at"] = time.monotonic()
            first["signum"] = signum
            if on_first is not None:
                on_first(name)
            _start_watchdog(shutdown, hard_exit, on_forced)
            return
        if signum == first.get("signum") and time.monotonic() - first.get("at", 0.0) < DUPLICATE_SIGNAL_WINDOW_S:
            return
        if on_forced is not None:
            on_forced(name)
        hard_exit(ExitCode.FORCED_EXIT)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _start_watchdog(
    shutdown: ShutdownSignal, hard_exit: Callable[[int], None], on_forced: Callable[[str], None] | None
) -> None:
    def watch() -> None:
        time.sleep(shutdown.grace_s + WATCHDOG_MARGIN_S)
        if on_forced is not None:
            on_forced("grace period exceeded")
        hard_exit(ExitCode.FORCED_EXIT)

    threading.Thread(target=watch, name="shutdown-watchdog", daemon=True).start()
