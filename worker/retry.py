"""Bounded retries: exponential backoff with jitter, and the outage clock that ends them.

The worker never retries forever: a broker that stays unreachable for longer than `max_outage_s` ends the
process with `ExitCode.BROKER_OUTAGE`, so the orchestrator restarts it (and alerts on the restarts).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import structlog


class BrokerOutageError(Exception):
    """The broker stayed unavailable for longer than the configured bound."""


class BackoffDelays:
    """Delays of `initial_s`, doubling up to `max_s`, each with +-20% jitter; `reset()` after a success."""

    def __init__(self, *, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self._initial_s = initial_s
        self._max_s = max_s
        self._attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next_delay_s(self) -> float:
        base = min(self._max_s, self._initial_s * 2.0 ** min(self._attempt, 32))
        self._attempt += 1
        jitter: float = self._rng.uniform(0.8, 1.2)
        return base * jitter

    def reset(self) -> None:
        self._attempt = 0

    def __repr__(self) -> str:
        return f"<BackoffDelays attempt={self._attempt} initial_s={self._initial_s} max_s={self._max_s}>"


class OutageClock:
    """Measures how long the broker has been failing us, from the first failure to the next success.

    `failed()` starts the clock (if not running) and raises `BrokerOutageError` once it has run for longer than
    `max_outage_s`; `succeeded()` stops it. `remaining_s()` is how long a blocking call may still wait.
    """

    def __init__(self, *, max_outage_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_outage_s = max_outage_s
        self._clock = clock
        self._since: float | None = None

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    @property
    def outage_s(self) -> float:
        return 0.0 if self._since is None else self._clock() - self._since

    def failed(self, what: str, *, started: float | None = None) -> None:
        """Record a failure; `started` (same clock) dates the outage back to when the failed call began."""
        now = self._clock()
        if self._since is None:
            self._since = now if started is None else min(started, now)
        if now - self._since >= self._max_outage_s:
            raise BrokerOutageError(f"broker unavailable for {now - self._since:.1f}s (last failure: {what})")

    def succeeded(self) -> None:
        self._since = None

    def remaining_s(self) -> float:
        """Seconds left before the outage bound, counting from now if no outage is running."""
        return max(0.0, self._max_outage_s - self.outage_s)

    def __repr__(self) -> str:
        return f"<OutageClock outage_s={self.outage_s:.1f} max_outage_s={self._max_outage_s}>"


class OutageLog:
    """The log lines of a broker outage: `kafka.unavailable` when it starts, `kafka.still_unavailable` at most every
    `every_s` seconds while it lasts (with its length and the failed attempts since the last line), and
    `kafka.available` when it ends. Whatever fails how often, a 30 s outage is three or four lines."""

    def __init__(self, *, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._active = False
        self._last_line = 0.0
        self._attempts = 0
        self._log = structlog.get_logger()

    def failed(self, error: str, *, outage_s: float, **context: Any) -> None:
        """One failed attempt during an outage that has lasted `outage_s` seconds."""
        self._attempts += 1
        now = self._clock()
        if not self._active:
            self._active = True
            self._log.warning("kafka.unavailable", error=error, outage_s=round(outage_s, 1), **context)
        elif now - self._last_line >= self._every_s:
            self._log.warning(
                "kafka.still_unavailable", error=error, outage_s=round(outage_s, 1), attempts=self._attempts, **context
            )
        else:
            return
        self._last_line = now
        self._attempts = 0

    def recovered(self, *, outage_s: float) -> None:
        """The broker answered again (nothing is logged when there was no outage)."""
        if self._active:
            self._log.info("kafka.available", outage_s=round(outage_s, 1))
            self._active = False
            self._attempts = 0

    def __repr__(self) -> str:
        return f"<OutageLog active={self._active} attempts={self._attempts}>"
