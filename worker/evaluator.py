"""Where the rules run: in the loop's own thread, or in child processes beside it (`evaluator_processes`).

kafka-python does its network work on an IO thread that shares the interpreter lock with the loop, so in one
process the rules (about 65 us of CPU per claim, parsing included) and the client (about 40 us per record, `send`
and fetch parsing) take turns on one core. With `evaluator_processes >= 1` the rules run in forked child processes
on the other cores: the loop hands each polled batch over in chunks, sends the outputs of a chunk while the
children evaluate the next ones, and gets the results back in record order. Nothing else changes: a batch is still
evaluated completely, produced in order, acknowledged and committed before the next poll, so the delivery
guarantees, the per-partition order and the rebalance handling are the same as in one process.

Both paths turn a record into the same `Evaluation` with the same function (`evaluate_item`), so the output
bytes are identical. A child that dies or stops answering is not fatal: the batch is evaluated in process
(nothing of it was committed) and the worker goes on without children, logging `evaluator.failed`.

Children are forked right after the rule engine is loaded, before any thread starts (forking a process with
threads can copy a lock in its held state), and share the engine's memory pages with the parent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import structlog

from rules.engine import RuleEngine
from rules.history import facts_of
from rules.pipeline import validate_record
from schemas.history import DeferredClaim
from schemas.parsing import DeadLetter, DeadLetterReason
from schemas.verdict import ClaimValidated, Outcome, SourceRecord
from worker.history.keys import MemberKeyer
from worker.kafka_io import Record

_serialize_verdict = ClaimValidated.__pydantic_serializer__.to_json
_serialize_deferred = DeferredClaim.__pydantic_serializer__.to_json

# Records per chunk handed to a child: at most this many (the hand-over, one pickle per chunk, then costs
# little per record), and at least 4 chunks per batch when the batch allows chunks of `MIN_CHUNK_RECORDS`, so that
# even the small batches of a lightly loaded worker overlap the children's work with the loop's sending.
CHUNK_RECORDS = 200
MIN_CHUNK_RECORDS = 25
# Smaller batches (a worker that keeps up) are evaluated in the loop's thread: handing a chunk over and back
# costs process wake-ups, a few milliseconds on a busy machine, which a small batch would add to its latency;
# larger batches (a worker catching up) go to the children, where the throughput is.
MIN_BATCH_RECORDS = 500
# A child that takes longer than this for one chunk (normally milliseconds) is taken as hung.
CHUNK_TIMEOUT_S = 30.0


class Verdict(NamedTuple):
    """A record that became a verdict: its claim.validated JSON and what metrics and logs count."""

    claim_id: str
    outcome: Outcome
    value: bytes  # the claim.validated JSON
    findings: tuple[tuple[str, str], ...]  # (rule_id, severity) of each finding
    duration_s: float


class Deferred(NamedTuple):
    """A claim with drug lines, sent on to the claim-history stage (keyed by its member key): stage B publishes
    its verdict once the cross-claim checks ran."""

    claim_id: str
    member_key: str
    value: bytes  # schemas.history.DeferredClaim JSON
    duration_s: float


class DeadLettered(NamedTuple):
    """A record that cannot be read as a claim (or whose evaluation failed): it goes to the dead-letter topic."""

    reason: DeadLetterReason
    error: str
    duration_s: float


# The closed result of evaluating one record.
Evaluation = Verdict | DeadLettered | Deferred

# (value, topic, partition, offset, headers) of one consumed record: what a child needs, cheap to pickle. The
# headers travel with the record so that an input format chosen by a header has a path; JSON ignores them.
RecordItem = tuple[bytes, str, int, int, Sequence[tuple[str, bytes]]]


def evaluate_claim_bytes(
    engine: RuleEngine,
    raw: bytes,
    *,
    validated_at: dt.datetime,
    max_bytes: int,
    source: SourceRecord | None = None,
    history: MemberKeyer | None = None,
) -> Evaluation:
    """Parse, validate and serialise one claim event. Never raises: every entry point (the worker, `validate`,
    the benchmarks) goes through here, and an exception anywhere inside (a bug) is an `internal_error` dead
    letter naming only the exception's type (its message could quote claim data).

    With `history` (claim history on), a claim with drug lines is `Deferred` to the history stage instead of
    getting its verdict here.
    """
    began = time.perf_counter()
    try:
        validated = validate_record(raw, engine, validated_at=validated_at, source=source, max_bytes=max_bytes)
        if isinstance(validated, DeadLetter):
            return DeadLettered(validated.reason, validated.error, time.perf_counter() - began)
        result, claim = validated
        if history is not None and claim is not None:
            filed_on = claim.submitted_on or validated_at.astimezone(dt.UTC).date()
            facts = facts_of(claim, engine.policy, member_key=history(claim.patient.member_id), filed_on=filed_on)
            if facts is not None:
                deferred = _serialize_deferred(DeferredClaim(verdict=result, facts=facts))
                return Deferred(result.claim_id, facts.member_key, deferred, time.perf_counter() - began)
        findings = tuple((finding.rule_id, finding.severity.value) for finding in result.findings)
        value = _serialize_verdict(result)
        return Verdict(result.claim_id, result.outcome, value, findings, time.perf_counter() - began)
    except Exception as error:  # noqa: BLE001 - the one guard: one bad claim must never stop the worker
        reason = f"evaluation failed: {type(error).__name__}"
        return DeadLettered(DeadLetterReason.INTERNAL_ERROR, reason, time.perf_counter() - began)


def evaluate_item(
    engine: RuleEngine,
    item: RecordItem,
    validated_at: dt.datetime,
    max_bytes: int,
    history: MemberKeyer | None = None,
) -> Evaluation:
    """`evaluate_claim_bytes` for one consumed record; the verdict names the record's Kafka coordinates."""
    raw, topic, partition, offset, _headers = item
    source = SourceRecord(topic=topic, partition=partition, offset=offset)
    return evaluate_claim_bytes(
        engine, raw, validated_at=validated_at, max_bytes=max_bytes, source=source, history=history
    )


def record_item(record: Record) -> RecordItem:
    value = record.value
    return (value if value is not None else b"", record.topic, record.partition, record.offset, record.headers)


class Evaluator:
    """Evaluates a batch's records in order: in this thread, or in the children of a `ProcessEvaluator`.

    Small batches (under the children's `min_batch_records`) are evaluated here. When a child dies or hangs,
    the rest of the batch is evaluated here (nothing of it is committed yet) and, from then on, every batch.
    """

    def __init__(
        self,
        engine: RuleEngine,
        *,
        max_record_bytes: int,
        children: ProcessEvaluator | None = None,
        history: MemberKeyer | None = None,
    ) -> None:
        """`history`: claim history is on; claims with drug lines are `Deferred` (the children need the same)."""
        self._engine = engine
        self._max_bytes = max_record_bytes
        self._children = children
        self._history = history
        self._log = structlog.get_logger()

    @property
    def children(self) -> ProcessEvaluator | None:
        """The child processes in use; None once they failed (or when there were none)."""
        return self._children

    def evaluate(self, records: Sequence[Record]) -> Iterator[Evaluation]:
        """One evaluation per record, in the order of `records`, lazily, so the caller can send meanwhile.

        With children, the records are handed over before this returns: they work while the caller does other
        things (the claim-history stage) before it reads the first result.
        """
        validated_at = dt.datetime.now(dt.UTC)
        children = self._children
        if children is None or len(records) < children.min_batch_records:
            return self._here(records, validated_at)
        items = [record_item(record) for record in records]
        children.submit(items, validated_at=validated_at, max_bytes=self._max_bytes)
        return self._from_children(children, items, validated_at)

    def _here(self, records: Sequence[Record], validated_at: dt.datetime) -> Iterator[Evaluation]:
        engine, max_bytes, history = self._engine, self._max_bytes, self._history
        for record in records:
            yield evaluate_item(engine, record_item(record), validated_at, max_bytes, history)

    def _from_children(
        self, children: ProcessEvaluator, items: list[RecordItem], validated_at: dt.datetime
    ) -> Iterator[Evaluation]:
        done = 0
        try:
            for chunk in children.results():
                for evaluation in chunk:
                    done += 1
                    yield evaluation
        except EvaluatorError as error:
            # Nothing of this batch is committed yet: evaluate the rest here, and from now on always here.
            self._log.error("evaluator.failed", error=str(error), evaluated_records=done)
            self._children = None
            children.close(timeout_s=1.0)
            for item in items[done:]:
                yield evaluate_item(self._engine, item, validated_at, self._max_bytes, self._history)

    def __repr__(self) -> str:
        return f"<Evaluator children={self._children!r}>"


class EvaluatorError(Exception):
    """The child processes cannot evaluate (one died or hung); the caller evaluates in process instead."""


class ProcessEvaluator:
    """`processes` forked children that evaluate chunks of a batch; results come back in record order.

    Create it before any thread of the process starts. Not thread-safe: one loop uses it.
    """

    def __init__(
        self,
        engine: RuleEngine,
        processes: int,
        *,
        chunk_records: int = CHUNK_RECORDS,
        chunk_timeout_s: float = CHUNK_TIMEOUT_S,
        min_batch_records: int = MIN_BATCH_RECORDS,
        history: MemberKeyer | None = None,
    ) -> None:
        """`history`: claim history is on (the children key members with it; forked, so it is never pickled)."""
        if processes < 1:
            raise ValueError("processes must be at least 1")
        context = multiprocessing.get_context("fork")
        self._chunk_records = chunk_records
        self._chunk_timeout_s = chunk_timeout_s
        self.min_batch_records = min_batch_records  # the loop evaluates smaller batches itself
        self._children: list[tuple[Any, Any, Connection]] = []
        self._outstanding: list[int] = []  # child index of each chunk whose result is not read yet
        self.chunks = 0
        # The engine and everything loaded so far stay untouched by the parent's and children's collectors, so
        # their memory pages stay shared (copy-on-write) instead of being copied by the GC's bookkeeping.
        gc.collect()
        gc.freeze()
        parent_pid = os.getpid()
        for number in range(processes):
            requests = context.Queue()
            receiver, sender = context.Pipe(duplex=False)
            child = context.Process(
                target=_child_main,
                args=(engine, history, requests, sender, parent_pid),
                name=f"claims-evaluator-{number}",
                daemon=True,
            )
            child.start()
            sender.close()  # the child's end: closed here so that a dead child reads as EOF
            self._children.append((child, requests, receiver))

    @property
    def processes(self) -> int:
        return len(self._children)

    @property
    def pids(self) -> list[int]:
        """The children's process ids (for operators' tools and tests)."""
        return [process.pid for process, _, _ in self._children]

    def evaluate(
        self, items: Sequence[RecordItem], *, validated_at: dt.datetime, max_bytes: int
    ) -> Iterator[list[Evaluation]]:
        """Chunks of results, in the order of `items` (`submit`, then `results`)."""
        self.submit(items, validated_at=validated_at, max_bytes=max_bytes)
        return self.results()

    def submit(self, items: Sequence[RecordItem], *, validated_at: dt.datetime, max_bytes: int) -> None:
        """Queue all chunks of `items` at once (a feeder thread writes them): the children start at once.

        Results of a batch whose results were not all read (its production failed midway) are discarded first.
        """
        self._discard_outstanding()
        size = min(self._chunk_records, max(MIN_CHUNK_RECORDS, -(-len(items) // 4)))
        count = len(self._children)
        for index, start in enumerate(range(0, len(items), size)):
            child = index % count
            self._children[child][1].put((validated_at, max_bytes, items[start : start + size]))
            self._outstanding.append(child)
            self.chunks += 1

    def results(self) -> Iterator[list[Evaluation]]:
        """The chunks of the last `submit`, in order. Raises `EvaluatorError` when a child fails."""
        while self._outstanding:
            results = self._receive(self._outstanding[0])
            self._outstanding.pop(0)  # before handing it out: a caller may abandon the batch at any yield
            yield results

    def _receive(self, child: int) -> list[Evaluation]:
        process, _, receiver = self._children[child]
        try:
            if not receiver.poll(self._chunk_timeout_s):
                raise EvaluatorError(f"evaluator process {process.name} did not answer in {self._chunk_timeout_s}s")
            results: list[Evaluation] = receiver.recv()
        except (EOFError, OSError) as error:
            raise EvaluatorError(
                f"evaluator process {process.name} failed (exit code {process.exitcode}): {type(error).__name__}"
            ) from None
        return results

    def _discard_outstanding(self) -> None:
        # Results of an abandoned batch (its production failed midway) must not be taken for the next one's.
        while self._outstanding:
            self._receive(self._outstanding.pop(0))

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the children (they finish the chunk at hand first)."""
        for _, requests, _ in self._children:
            with contextlib.suppress(OSError, ValueError):
                requests.put(None)
        deadline = time.monotonic() + timeout_s
        for process, requests, receiver in self._children:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)
            requests.close()
            requests.cancel_join_thread()
            receiver.close()
        self._children = []
        self._outstanding = []

    def __repr__(self) -> str:
        alive = sum(1 for process, _, _ in self._children if process.is_alive())
        return f"<ProcessEvaluator processes={len(self._children)} alive={alive} chunks={self.chunks}>"


def _child_main(
    engine: RuleEngine, history: MemberKeyer | None, requests: Any, results: Connection, parent_pid: int
) -> None:  # pragma: no cover - runs in the child process (covered through ProcessEvaluator's tests)
    # The parent decides when to stop (it finishes its batch first); a signal to the whole process group
    # (Ctrl-C in a terminal) must not kill the child under it. A dead parent ends the child within a second.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        try:
            request = requests.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent_pid:
                return
            continue
        if request is None:
            return
        validated_at, max_bytes, items = request
        results.send([evaluate_item(engine, item, validated_at, max_bytes, history) for item in items])


def start_evaluator(
    engine: RuleEngine, processes: int, *, history: MemberKeyer | None = None
) -> ProcessEvaluator | None:
    """`ProcessEvaluator` with `processes` children, or None for 0 (the rules run in the loop's thread)."""
    return ProcessEvaluator(engine, processes, history=history) if processes > 0 else None
