"""`python -m chaos.faulty_worker run`: `claims-worker run` with one fault armed (the claim-history scenarios).

The production packages carry no fault-injection code. This wrapper patches one method of the worker's classes
in its own process, then calls the worker's own CLI (`worker.cli.main`). On the Nth call that qualifies it writes
a `chaos.fault_injected` JSON line to stderr and SIGKILLs its own process group: itself and its evaluator child,
as when a container is killed (the harness starts every worker in a session of its own).

`CHAOS_FAULT=<point>:<n>` arms the fault at the nth qualifying call; the points:

- `changelog_flushed` (at_least_once): `KafkaProducerAdapter.flush`, the call that `AtLeastOnceSink.deliver` makes
  right after sending the batch's changelog records, once it has returned: the changelog records are durable, the
  batch's verdicts are not sent yet and its offsets are not committed. Qualifies: batches with changelog records.
- `offsets_commit` (at_least_once): `AtLeastOnceSink.commit_pending` as `deliver` calls it, before it commits:
  changelog records and verdicts are durable (flushed), the offsets are not committed. Qualifies: batches with
  changelog records.
- `transaction_commit` (exactly_once): `KafkaProducerAdapter.commit_transaction`, before it calls
  `send_offsets_to_transaction` and `commit_transaction`, after a `flush()` of the kafka-python producer so that
  the transaction's changelog records and verdicts are in the log: the transaction stays open until the same
  transactional id is initialised again (the same worker id restarting fences it and aborts it at once) or the
  coordinator aborts it after `CLAIMS_TRANSACTION_TIMEOUT_MS`. Qualifies: batches with changelog records.
- `store_write` (both modes): `BatchWork.delivered` of a batch whose delivery committed (at_least_once: flushed
  and offsets committed; exactly_once: its transaction committed), before `HistoryStage.commit` writes its
  changes to the local stores. Qualifies: committed batches that changed history.

`CHAOS_START_GATE=<path>` (optional): once the worker's modules are imported, wait until that file exists (up to
10 minutes), then start; a scenario can so time a worker's joining its group to a fraction of a second.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import worker.app
import worker.commands.run  # noqa: F401 - same
from worker import sink as sink_module
from worker.cli import main
from worker.kafka_io import KafkaProducerAdapter, TopicPartition
from worker.routing import OutputRecord
from worker.sink import AtLeastOnceSink, Delivery, ExactlyOnceSink, WaitBudget
from worker.stages import BatchWork

FAULT_ENV = "CHAOS_FAULT"
GATE_ENV = "CHAOS_START_GATE"
FAULT_EVENT = "chaos.fault_injected"
GATE_TIMEOUT_S = 600.0
POINTS = ("changelog_flushed", "offsets_commit", "transaction_commit", "store_write")


def kill_own_group() -> None:
    """SIGKILL this process and its children: its process group when it leads one, else only itself."""
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def announce(point: str, call: int, detail: Mapping[str, Any]) -> None:
    line = {
        "event": FAULT_EVENT,
        "point": point,
        "call": call,
        **detail,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
    }
    sys.stderr.write(json.dumps(line) + "\n")
    sys.stderr.flush()


@dataclass
class Trip:
    """Counts the qualifying calls of one fault point and fires on the `at`th (once)."""

    point: str
    at: int
    fire: Callable[[], None] = kill_own_group
    calls: int = 0
    fired: bool = field(default=False, init=False)

    def qualifying_call(self, **detail: Any) -> None:
        self.calls += 1
        if self.calls == self.at and not self.fired:
            self.fired = True
            announce(self.point, self.calls, detail)
            self.fire()

    @classmethod
    def parse(cls, spec: str) -> Trip:
        """`<point>:<n>`; raises ValueError for an unknown point or an n below 1."""
        point, _, count = spec.partition(":")
        if point not in POINTS:
            raise ValueError(f"unknown fault point {point!r} (one of {', '.join(POINTS)})")
        at = int(count or "1")
        if at < 1:
            raise ValueError("the call number of a fault must be at least 1")
        return cls(point, at)


Patch = Callable[[object, str, Any], None]


def arm(trip: Trip, patch: Patch = setattr) -> None:
    """Patch the worker's classes (in this process only) so that `trip` sees its point's qualifying calls.

    `patch(owner, name, value)` replaces an attribute (tests pass pytest's `monkeypatch.setattr`, which undoes it).
    """
    {
        "changelog_flushed": _arm_changelog_flushed,
        "offsets_commit": _arm_offsets_commit,
        "transaction_commit": _arm_transaction_commit,
        "store_write": _arm_store_write,
    }[trip.point](trip, patch)


def _arm_changelog_flushed(trip: Trip, patch: Patch) -> None:
    send_changelog = sink_module._send_changelog
    flush = KafkaProducerAdapter.flush
    changelog_sent: set[int] = set()  # producers whose next flush is the one of a batch's changelog records

    def sending_changelog(producer: Any, changelog: Sequence[OutputRecord]) -> dict[int, Callable[[], int]]:
        sent = send_changelog(producer, changelog)
        if changelog:
            changelog_sent.add(id(producer))
        return sent

    def flushing(self: KafkaProducerAdapter, timeout_s: float) -> None:
        flush(self, timeout_s)
        if id(self) in changelog_sent:
            changelog_sent.discard(id(self))
            trip.qualifying_call()

    patch(sink_module, "_send_changelog", sending_changelog)
    patch(KafkaProducerAdapter, "flush", flushing)


def _arm_offsets_commit(trip: Trip, patch: Patch) -> None:
    deliver = AtLeastOnceSink.deliver
    commit_pending = AtLeastOnceSink.commit_pending
    delivering_changelog = [False]

    def delivering(
        self: AtLeastOnceSink,
        outputs: Iterable[OutputRecord],
        offsets: Mapping[TopicPartition, int],
        budget: WaitBudget,
        changelog: Sequence[OutputRecord] = (),
    ) -> Delivery:
        delivering_changelog[0] = bool(changelog)
        try:
            return deliver(self, outputs, offsets, budget, changelog)
        finally:
            delivering_changelog[0] = False

    def committing(self: AtLeastOnceSink, budget: WaitBudget) -> Any:
        if delivering_changelog[0]:
            trip.qualifying_call(offsets=len(self.pending))
        return commit_pending(self, budget)

    patch(AtLeastOnceSink, "deliver", delivering)
    patch(AtLeastOnceSink, "commit_pending", committing)


def _arm_transaction_commit(trip: Trip, patch: Patch) -> None:
    deliver = ExactlyOnceSink.deliver
    commit_transaction = KafkaProducerAdapter.commit_transaction
    delivering_changelog = [False]

    def delivering(
        self: ExactlyOnceSink,
        outputs: Iterable[OutputRecord],
        offsets: Mapping[TopicPartition, int],
        budget: WaitBudget,
        changelog: Sequence[OutputRecord] = (),
    ) -> Delivery:
        delivering_changelog[0] = bool(changelog)
        try:
            return deliver(self, outputs, offsets, budget, changelog)
        finally:
            delivering_changelog[0] = False

    def committing(
        self: KafkaProducerAdapter, offsets: Mapping[TopicPartition, int], group_metadata: object, timeout_s: float
    ) -> None:
        if delivering_changelog[0]:
            self._producer.flush(timeout=timeout_s)
            trip.qualifying_call(offsets=len(offsets))
        commit_transaction(self, offsets, group_metadata, timeout_s)

    patch(ExactlyOnceSink, "deliver", delivering)
    patch(KafkaProducerAdapter, "commit_transaction", committing)


def _arm_store_write(trip: Trip, patch: Patch) -> None:
    delivered = BatchWork.delivered

    def delivering(self: BatchWork, delivery: Delivery) -> None:
        history = self.history
        if delivery.committed and history is not None and any(c.by_member for c in history.partitions.values()):
            trip.qualifying_call(partitions=sorted(history.partitions))
        delivered(self, delivery)

    patch(BatchWork, "delivered", delivering)


def wait_for_gate(path: Path, timeout_s: float = GATE_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def run(argv: Sequence[str]) -> int:
    spec = os.environ.get(FAULT_ENV, "")
    if spec:
        try:
            arm(Trip.parse(spec))
        except ValueError as error:
            sys.stderr.write(f"chaos.faulty_worker: {FAULT_ENV}: {error}\n")
            return 2
    gate = os.environ.get(GATE_ENV, "")
    if gate and not wait_for_gate(Path(gate)):
        sys.stderr.write(f"chaos.faulty_worker: {GATE_ENV} never opened\n")
        return 2
    return main(list(argv))


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
