"""Structured logs (structlog): JSON lines when not on a TTY, dotted event names, never patient data.

Event names are dotted (`batch.processed`, `claim.dead_lettered`, `kafka.commit_failed`); context is bound once
per unit of work. Claims carry patient data, so log lines carry ids, codes, counts and Kafka coordinates only:
a processor masks keys that could hold claim content in case a call site ever passes one, and kafka-python's
own logger is held at WARNING because at DEBUG it prints every record it sends.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

from worker.settings import LogFormat

# Keys that could carry claim content. Log call sites never use them; this is the safety net.
REDACTED_KEYS = frozenset(
    {"value", "body", "payload", "claim", "patient", "member_id", "birth_date", "name", "raw", "record", "document"}
)
REDACTED = "[redacted]"

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def redact_patient_data(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: replace the values of `REDACTED_KEYS` (patient data must never reach a log)."""
    del logger, method_name
    for key in REDACTED_KEYS.intersection(event_dict):
        event_dict[key] = REDACTED
    return event_dict


class _StaticContext:
    """structlog processor: add fixed keys to every event (context variables do not cross threads)."""

    def __init__(self, context: dict[str, str]) -> None:
        self._context = context

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        del logger, method_name
        for key, value in self._context.items():
            event_dict.setdefault(key, value)
        return event_dict


def resolve_format(log_format: LogFormat | None, stream: TextIO) -> LogFormat:
    """`log_format`, or else console on a TTY and JSON otherwise."""
    if log_format is not None:
        return log_format
    isatty = getattr(stream, "isatty", None)
    return LogFormat.CONSOLE if callable(isatty) and isatty() else LogFormat.JSON


def configure_logging(
    log_format: LogFormat | None,
    level: str = "info",
    stream: TextIO | None = None,
    *,
    static_context: Mapping[str, str] | None = None,
) -> LogFormat:
    """Configure structlog and the standard library's logging (kafka-python) to write to `stream`.

    `stream` defaults to stderr (stdout stays free for command output). `static_context` (e.g. the worker id)
    is added to every line from every thread. Returns the format chosen.
    """
    target = stream if stream is not None else sys.stderr
    chosen = resolve_format(log_format, target)
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if chosen is LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        _StaticContext(dict(static_context or {})),
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_patient_data,
    ]
    exception_formatting: list[Any] = [structlog.processors.format_exc_info] if chosen is LogFormat.JSON else []
    structlog.configure(
        processors=[*shared, *exception_formatting, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=target),
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(target)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *exception_formatting, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_claims_worker", False):
            root.removeHandler(existing)
    handler._claims_worker = True  # type: ignore[attr-defined]
    if level != "debug":
        handler.addFilter(RepeatLimiter(KAFKA_REPEAT_WINDOW_S))
    root.addHandler(handler)
    root.setLevel(max(_LEVELS.get(level, logging.INFO), logging.INFO))
    # kafka-python logs record keys and values at DEBUG. The logger stays at WARNING (the adapter's bootstrap-failure
    # filter reads those records); the handler's limiter keeps a reconnect loop from flooding the log.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    return chosen


KAFKA_REPEAT_WINDOW_S = 60.0


class RepeatLimiter:
    """Logging filter: each kafka-python message shown at most once per window.

    kafka-python 3 logs every failed reconnect at ERROR (`Connection failed: ...`, `...: Connection lost: ...`), several
    a second while a broker is down; the worker's own outage lines (`kafka.unavailable`, `kafka.still_unavailable`,
    `kafka.available`) say what matters. The first line of each kind is shown, repeats within `window_s` are counted,
    and the next one shown says how many were hidden. Kinds are the unformatted message (the node and error are
    arguments), so a new kind of error is never hidden behind an old one. At log level debug nothing is limited.
    """

    def __init__(self, window_s: float, clock: Any = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._shown: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.name == "kafka" or record.name.startswith("kafka.")):
            return True
        kind = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            last_shown, hidden = self._shown.get(kind, (None, 0))
            if last_shown is not None and now - last_shown < self._window_s:
                self._shown[kind] = (last_shown, hidden + 1)
                return False
            self._shown[kind] = (now, 0)
        if hidden:
            record.msg = f"{record.msg} (and {hidden} more like it in the last {self._window_s:.0f} s)"
        return True


def get_logger(**context: Any) -> Any:
    """A structlog logger with `context` bound (e.g. `worker_id`)."""
    return structlog.get_logger().bind(**context)
