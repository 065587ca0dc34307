"""chaos.faulty_worker's fault points fire where its docstring says, on the loop with in-memory fakes: the Nth
qualifying call, once, with the batch durable (and, for `store_write`, committed) and its store not yet written."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from chaos.faulty_worker import POINTS, Trip, arm
from chaos.traffic import EXAMPLES
from rules.engine import RuleEngine, load_engine
from tests.worker.conftest import CHANGELOG, FAIL, PASS, REPARTITION, Harness

pytestmark = pytest.mark.timeout(60)

MakeHarness = Callable[..., Harness]


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return load_engine()


def publish_exact_duplicates(h: Harness, count: int) -> None:
    """`count` copies of the worked example (examples line 1) under their own claim ids, one member."""
    document = json.loads(EXAMPLES.read_text(encoding="utf-8").splitlines()[0])
    for number in range(count):
        document.update(claim_id=f"CLM-DUP-{number}", event_id=f"evt-dup-{number}")
        h.publish(json.dumps(document).encode(), key=document["claim_id"].encode())


def repartition_committed(h: Harness) -> int:
    return sum(offset for tp, offset in h.broker.committed.items() if tp.topic == REPARTITION)


def test_a_trip_fires_once_on_its_nth_qualifying_call() -> None:
    fired: list[int] = []
    trip = Trip("store_write", 3, fire=lambda: fired.append(trip.calls))

    for _ in range(6):
        trip.qualifying_call()

    assert fired == [3]
    assert trip.calls == 6


@pytest.mark.parametrize("spec", ["nowhere:1", "store_write:0", "store_write:x"])
def test_a_fault_spec_with_an_unknown_point_or_a_bad_count_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"point|least|invalid literal"):
        Trip.parse(spec)


def test_a_fault_spec_names_a_point_and_the_call_to_fire_on() -> None:
    assert {Trip.parse(f"{point}:4").point for point in POINTS} == set(POINTS)
    assert Trip.parse("offsets_commit:4").at == 4


def test_store_write_fires_after_the_commit_and_before_the_store_write(
    make_harness: MakeHarness, engine: RuleEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the loop with claim history, and the store_write fault armed on its first qualifying call
    h = make_harness(history=True, engine=engine)
    assert h.history is not None
    stores = h.history.partitions.stores
    seen: dict[str, Any] = {}

    def fire() -> None:
        seen["committed"] = repartition_committed(h)
        seen["stored"] = sum(store.checkpoint.source_offset for store in stores.values())

    trip = Trip("store_write", 1, fire=fire)
    arm(trip, monkeypatch.setattr)
    publish_exact_duplicates(h, 3)

    # When the worker judges the claims (stage A's batch changes no history; stage B's does)
    h.drain()

    # Then the fault fired once, when the repartition offsets were committed and no store had the batch yet
    assert trip.fired
    assert trip.calls == 1
    assert seen == {"committed": 3, "stored": 0}
    assert sum(store.checkpoint.source_offset for store in stores.values()) == 3


def test_offsets_commit_fires_with_changelog_and_verdicts_flushed_and_the_offsets_not_committed(
    make_harness: MakeHarness, engine: RuleEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the loop with claim history in at_least_once, and the offsets_commit fault armed
    h = make_harness(history=True, engine=engine)
    seen: dict[str, int] = {}

    def fire() -> None:
        seen["changelog"] = len(h.broker.records(CHANGELOG))
        seen["verdicts"] = len(h.broker.records(PASS)) + len(h.broker.records(FAIL))
        seen["committed"] = repartition_committed(h)

    trip = Trip("offsets_commit", 1, fire=fire)
    arm(trip, monkeypatch.setattr)
    publish_exact_duplicates(h, 3)

    # When the worker judges the claims
    h.drain()

    # Then it fired in stage B's batch: 3 claims x 2 drug lines in the changelog, 3 verdicts out, nothing committed
    assert trip.calls == 1
    assert seen == {"changelog": 6, "verdicts": 3, "committed": 0}
    assert repartition_committed(h) == 3  # and committed once the fault had passed


def test_offsets_commit_ignores_commits_of_batches_without_changelog_records(
    make_harness: MakeHarness, engine: RuleEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the offsets_commit fault armed on its second qualifying call
    h = make_harness(history=True, engine=engine)
    trip = Trip("offsets_commit", 2, fire=lambda: None)
    arm(trip, monkeypatch.setattr)
    publish_exact_duplicates(h, 2)

    # When one batch of stage A (no changelog) and one of stage B (changelog) are delivered
    h.drain()

    # Then only stage B's commit qualified
    assert trip.calls == 1
    assert not trip.fired
