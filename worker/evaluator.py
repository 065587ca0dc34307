"""Where the rules run: in the loop's own thread, or in child processes beside it (`evaluator_processes`).

kafka-python does its network work on an IO thread that shares the interpreter lock with the loop, so in one
process the rules (about 65 us of CPU per claim, parsing included) and the client (about 40 us per record, `send`
and fetch parsing) take turns on one core. With `evaluator_processes >= 1` the rules run in forked child processes
on the other cores: the loop hands each polled batch over in chunks, sends the outputs of a chunk while the
children evaluate the next ones, and gets the results back in record order. Nothing else changes: a batch is still
evaluated completely, produced in order, acknowledged and committed before the next poll, so the delivery
guarantees, the per-partition order and the rebalance handling are the same as in one process.

Both paths turn a record into the same `Evaluated` with the same function (`evaluate_value`), so the output
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
from typing import Any, NamedTuple, Protocol

from rules.engine import RuleEngine
from rules.pipeline import evaluate_record
from schemas.parsing import DEFAULT_MAX_BYTES, DeadLetter, DeadLetterReason
from schemas.verdict import ClaimValidated, Outcome, SourceRecord

_serialize_verdict = ClaimValidated.__pydantic_serializer__.to_json

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


class Evaluate(Protocol):
    def __call__(
        self,
        raw: bytes,
        engine: RuleEngine,
        *,
        validated_at: dt.datetime,
        source: SourceRecord | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> ClaimValidated | DeadLetter: ...


class Evaluated(NamedTuple):
    """One record's result as the loop needs it: the verdict bytes (or the dead letter) and what metrics count."""

    outcome: Outcome | None  # None for a dead letter
    claim_id: str
    value: bytes | None  # the claim.validated JSON; None for a dead letter
    findings: tuple[tuple[str, str], ...]  # (rule_id, severity) of each finding
    dead_letter: DeadLetter | None
    duration_s: float


# (value, topic, partition, offset) of one consumed record
RecordItem = tuple[bytes, str, int, int]


def evaluate_value(
    evaluate: Evaluate,
    engine: RuleEngine,
    item: RecordItem,
    validated_at: dt.datetime,
    max_bytes: int,
) -> Evaluated:
    """Evaluate one record value and serialise its verdict; never raises (an exception is a dead letter)."""
    raw, topic, partition, offset = item
    began = time.perf_counter()
    try:
        result = evaluate(
            raw,
            engine,
            validated_at=validated_at,
            source=SourceRecord(topic=topic, partition=partition, offset=offset),
            max_bytes=max_bytes,
        )
        if isinstance(result, ClaimValidated):
            return Evaluated(
                result.outcome,
                result.claim_id,
                _serialize_verdict(result),
                tuple((finding.rule_id, finding.severity.value) for finding in result.findings),
                None,
                time.perf_counter() - began,
            )
        letter = (
            result
            if isinstance(result, DeadLetter)
            else DeadLetter(DeadLetterReason.INTERNAL_ERROR, f"worker failed: unexpected {type(result).__name__}")
        )
    except Exception as error:  # noqa: BLE001 - one bad claim must never stop the worker
        letter = DeadLetter(DeadLetterReason.INTERNAL_ERROR, f"worker failed: {type(error).__name__}")
    return Evaluated(None, "", None, (), letter, time.perf_counter() - began)


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
        evaluate: Evaluate = evaluate_record,
        chunk_records: int = CHUNK_RECORDS,
        chunk_timeout_s: float = CHUNK_TIMEOUT_S,
        min_batch_records: int = MIN_BATCH_RECORDS,
    ) -> None:
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
                args=(engine, evaluate, requests, sender, parent_pid),
                name=f"claims-evaluator-{number}",
                daemon=True,
            )
            child.start()
            sender.close()  # the child's end: closed here so that a dead child reads as EOF
            self._children.append((child, requests, receiver))

    @property
    def processes(self) -> int:
        return len(self._children)

    def evaluate(
        self, items: Sequence[RecordItem], *, validated_at: dt.datetime, max_bytes: int
    ) -> Iterator[list[Evaluated]]:
        """Chunks of results, in the order of `items`. Raises `EvaluatorError` when a child fails.

        All chunks are queued at once (a feeder thread writes them), so the children work while the caller
        handles the results it already has.
        """
        self._discard_outstanding()
        size = min(self._chunk_records, max(MIN_CHUNK_RECORDS, -(-len(items) // 4)))
        count = len(self._children)
        for index, start in enumerate(range(0, len(items), size)):
            child = index % count
            self._children[child][1].put((validated_at, max_bytes, items[start : start + size]))
            self._outstanding.append(child)
            self.chunks += 1
        while self._outstanding:
            results = self._receive(self._outstanding[0])
            self._outstanding.pop(0)  # before handing it out: a caller may abandon the batch at any yield
            yield results

    def _receive(self, child: int) -> list[Evaluated]:
        process, _, receiver = self._children[child]
        try:
            if not receiver.poll(self._chunk_timeout_s):
                raise EvaluatorError(f"evaluator process {process.name} did not answer in {self._chunk_timeout_s}s")
            results: list[Evaluated] = receiver.recv()
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
    engine: RuleEngine, evaluate: Evaluate, requests: Any, results: Connection, parent_pid: int
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
        results.send([evaluate_value(evaluate, engine, item, validated_at, max_bytes) for item in items])


def start_evaluator(engine: RuleEngine, processes: int) -> ProcessEvaluator | None:
    """`ProcessEvaluator` with `processes` children, or None for 0 (the rules run in the loop's thread)."""
    return ProcessEvaluator(engine, processes) if processes > 0 else None
