"""Structured logs (structlog): JSON lines when not on a TTY, dotted event names, never patient data.

Event names are dotted (`batch.processed`, `claim.dead_lettered`, `kafka.commit_failed`); context is bound once
per unit of work. Claims carry patient data, so log lines carry ids, codes, counts and Kafka coordinates only:
a processor masks keys that could hold claim content in case a call site ever passes one, and kafka-python's
own logger is held at WARNING because at DEBUG it prints every record it sends.
"""

from __future__ import annotations

import logging
import sys
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
    root.addHandler(handler)
    root.setLevel(max(_LEVELS.get(level, logging.INFO), logging.INFO))
    # kafka-python logs record keys and values at DEBUG, and every reconnect attempt at INFO/WARNING.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    return chosen


def get_logger(**context: Any) -> Any:
    """A structlog logger with `context` bound (e.g. `worker_id`)."""
    return structlog.get_logger().bind(**context)
