"""Where each evaluated record goes: a pure function from a record and its evaluation to one output record.

- a verdict with outcome `fail` -> the fail topic, keyed by its claim id;
- any other verdict (`pass`, `not_applicable`) -> the pass topic, keyed by its claim id;
- a dead letter -> the dead-letter topic: the original key, value and headers, plus the `dlq.*` headers below;
- a deferred claim (claim history on) -> the repartition topic, keyed by its member key, with the input record's
  timestamp (so latency and event time stay the input's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, assert_never

from schemas.verdict import Outcome
from worker.evaluator import DeadLettered, Deferred, Evaluation, Verdict
from worker.kafka_io import Headers, Record
from worker.settings import WorkerSettings

# Dead-letter headers (the original key, value and headers are kept unchanged; these are appended).
DLQ_REASON = "dlq.reason"
DLQ_ERROR = "dlq.error"
DLQ_SOURCE_TOPIC = "dlq.source.topic"
DLQ_SOURCE_PARTITION = "dlq.source.partition"
DLQ_SOURCE_OFFSET = "dlq.source.offset"
DLQ_WORKER_ID = "dlq.worker_id"
# What a dead letter left out of its copy of the original record, e.g. `value=10485500` (see `bounded_copy`).
DLQ_OMITTED = "dlq.omitted"
# Room kept for the dlq.* headers and Kafka's record overhead when copying a record of the worker's size limit.
DLQ_HEADROOM_BYTES = 8 * 1024
DLQ_ERROR_MAX_CHARS = 200


class OutputRecord(NamedTuple):
    """One record to produce; `partition` None = by the key's hash, `timestamp_ms` None = the producer's clock."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    partition: int | None = None
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Routes:
    """The output topics, and what a dead letter carries besides the original record."""

    pass_topic: str
    fail_topic: str
    dlq_topic: str
    worker_id: str
    max_record_bytes: int
    history_topic: str | None = None  # the repartition topic, when claim history is on

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> Routes:
        return cls(
            pass_topic=settings.pass_topic,
            fail_topic=settings.fail_topic,
            dlq_topic=settings.dlq_topic,
            worker_id=settings.worker_id,
            max_record_bytes=settings.max_record_bytes,
            history_topic=settings.repartition_topic if settings.history_enabled else None,
        )


def route(record: Record, evaluation: Evaluation, routes: Routes) -> OutputRecord:
    """The output record that answers `record`."""
    match evaluation:
        case Verdict(claim_id=claim_id, outcome=outcome, value=value):
            topic = routes.fail_topic if outcome is Outcome.FAIL else routes.pass_topic
            return OutputRecord(topic, claim_id.encode(), value, None)
        case DeadLettered():
            return dead_letter(record, evaluation, routes)
        case Deferred(member_key=member_key, value=value):
            if routes.history_topic is None:
                raise TypeError("a claim was deferred to claim history, but history is off")
            timestamp = record.timestamp if record.timestamp >= 0 else None
            return OutputRecord(routes.history_topic, member_key.encode(), value, None, timestamp_ms=timestamp)
        case _:
            assert_never(evaluation)


def dead_letter(record: Record, letter: DeadLettered, routes: Routes) -> OutputRecord:
    """The dead-letter record of `record`: its (bounded) copy plus the `dlq.*` headers."""
    key, value, original_headers, omitted = bounded_copy(record, routes.max_record_bytes)
    headers: Headers = [
        *original_headers,
        (DLQ_REASON, letter.reason.value.encode()),
        (DLQ_ERROR, letter.error[:DLQ_ERROR_MAX_CHARS].encode()),
        (DLQ_SOURCE_TOPIC, record.topic.encode()),
        (DLQ_SOURCE_PARTITION, str(record.partition).encode()),
        (DLQ_SOURCE_OFFSET, str(record.offset).encode()),
        (DLQ_WORKER_ID, routes.worker_id.encode()),
    ]
    if omitted:
        headers.append((DLQ_OMITTED, omitted.encode()))
    if value is None and key is None:
        value = b""  # a record needs a key or a value; an empty one stands for "no value"
    return OutputRecord(routes.dlq_topic, key, value, headers)


def bounded_copy(record: Record, max_record_bytes: int) -> tuple[bytes | None, bytes | None, Headers, str]:
    """The key, value and headers a dead letter copies, and what it left out ("" when nothing).

    A record the broker accepted on the input topic can be too big to write again with dead-letter headers (a
    `too_large` value just under the broker's limit, or any value within a few hundred bytes of it). Such a copy
    would fail its batch on every retry: the worker would exit, restart, and fail on the same record for ever.
    So a copy is at most `max_record_bytes` minus some headroom: the value is left out first, then the original
    headers, then the key; the original stays in the input topic, at the coordinates of the dlq.source.* headers.
    """
    budget = max_record_bytes - min(DLQ_HEADROOM_BYTES, max_record_bytes // 16)
    key, value = record.key, record.value
    headers: Headers = [*record.headers] if record.headers else []

    def size() -> int:
        return len(key or b"") + len(value or b"") + sum(len(name) + len(data or b"") for name, data in headers)

    omitted: list[str] = []
    if size() > budget and value:
        omitted.append(f"value={len(value)}")
        value = b""
    if size() > budget and headers:
        omitted.append(f"headers={len(headers)}")
        headers = []
    if size() > budget and key:
        omitted.append(f"key={len(key)}")
        key = None
    return key, value, headers, ",".join(omitted)
