"""Claim history through the loop on in-memory fakes: two stages, the local stores, the changelog and restores.

The expected findings of every sequence come from the rules' own fold (tests/rules/test_history_sequences.py), so
the worker must give what the rules say, whichever batches, failures and restarts come between.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rules.engine import RuleEngine, load_engine
from rules.history import RULES as HISTORY_RULES
from tests.rules.test_history_sequences import SEQUENCES, Sequence, fold
from tests.worker import claims
from tests.worker.conftest import CHANGELOG, DLQ, FAIL, HISTORY_KEY, PASS, REPARTITION, Harness
from worker.history.keys import MemberKeyer
from worker.history.stage import SOURCE_OFFSET_HEADER
from worker.history.store import StoreError
from worker.kafka_io import BrokerUnavailableError, TopicPartition

pytestmark = pytest.mark.timeout(60)

MakeHarness = Callable[..., Harness]
KEYER = MemberKeyer(HISTORY_KEY)


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return load_engine()


def history_findings(value: bytes, engine: RuleEngine) -> list[str]:
    profiles = set(engine.policy.profiles)
    templates = set(HISTORY_RULES)

    def template(rule_id: str) -> str:
        prefix, _, rest = rule_id.partition(".")
        return "{code}." + rest if prefix in profiles else rule_id

    return sorted(f["rule_id"] for f in json.loads(value)["findings"] if template(f["rule_id"]) in templates)


def verdicts_by_event(h: Harness) -> dict[str, dict[str, Any]]:
    """The last verdict of each input event id, from both verdict topics."""
    found = {}
    for topic in (PASS, FAIL):
        for record in h.broker.records(topic):
            verdict = json.loads(record.value)
            found[verdict["source_event_id"]] = verdict
    return found


def publish_sequence(h: Harness, sequence: Sequence) -> None:
    for claim in sequence.claims:
        h.publish(json.dumps(claim.document).encode(), key=claim.document["claim_id"].encode(), partition=0)


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at_least_once", "exactly_once"])
@pytest.mark.parametrize("sequence", SEQUENCES, ids=[sequence.name for sequence in SEQUENCES])
def test_the_loop_gives_each_claim_the_history_findings_of_the_rules_fold(
    make_harness: MakeHarness, engine: RuleEngine, sequence: Sequence, exactly_once: bool
) -> None:
    # Given a sequence of claims on one input partition, in one batch (a duplicate inside one batch included)
    h = make_harness(history=True, engine=engine, exactly_once=exactly_once)
    publish_sequence(h, sequence)

    # When the worker processes them through both stages
    h.drain()

    # Then every claim's verdict carries what the rules' fold says, and nothing went to the dead-letter topic
    expected = fold(engine, [claim.document for claim in sequence.claims])
    verdicts = verdicts_by_event(h)
    for claim, verdict in zip(sequence.claims, expected, strict=True):
        published = verdicts[claim.document["event_id"]]
        assert history_findings(json.dumps(published).encode(), engine) == sorted(claim.expect)
        assert published["outcome"] == verdict.outcome.value
    assert h.broker.records(DLQ) == []


def test_claims_without_drug_lines_keep_the_one_hop_path(make_harness: MakeHarness, engine: RuleEngine) -> None:
    h = make_harness(history=True, engine=engine)
    document = claims.claim_document("NA-1")
    document["lines"][0]["procedure_code"] = "99213"
    h.publish(json.dumps(document).encode(), key=b"NA-1")
    h.publish(claims.malformed("BAD-1"), key=b"BAD-1")

    h.drain()

    assert h.broker.records(REPARTITION) == []
    assert [json.loads(r.value)["outcome"] for r in h.broker.records(PASS)] == ["not_applicable"]
    assert len(h.broker.records(DLQ)) == 1


def test_repartition_and_changelog_records_carry_no_member_id(make_harness: MakeHarness, engine: RuleEngine) -> None:
    h = make_harness(history=True, engine=engine)
    h.publish(claims.valid("PASS-1"), key=b"PASS-1")

    h.drain()

    [deferred] = h.broker.records(REPARTITION)
    assert deferred.key == KEYER(claims.SECRET_MEMBER_PREFIX + "PASS-1").encode()
    changelog = h.broker.records(CHANGELOG)
    assert changelog
    for record in [deferred, *changelog]:
        text = (record.key or b"") + (record.value or b"")
        assert claims.SECRET_MEMBER_PREFIX.encode() not in text
        assert claims.SECRET_VALID_BIRTH_DATE.encode() not in text
    assert {dict(record.headers)[SOURCE_OFFSET_HEADER] for record in changelog} == {b"0"}
    assert all(record.partition == deferred.partition for record in changelog)


def test_the_repartitioned_claim_keeps_the_input_records_timestamp(
    make_harness: MakeHarness, engine: RuleEngine
) -> None:
    h = make_harness(history=True, engine=engine)
    h.broker.now_ms = 1_700_000_123_456
    h.publish(claims.valid("PASS-1"), key=b"PASS-1")
    h.broker.now_ms = 1_800_000_000_000

    h.drain()

    [deferred] = h.broker.records(REPARTITION)
    assert deferred.timestamp == 1_700_000_123_456
    assert h.metric("claims_history_deferred_total") == 1
    assert h.metric("claims_consumed_total") == 1


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at_least_once", "exactly_once"])
def test_a_failed_delivery_of_the_history_batch_is_judged_again_against_the_same_history(
    make_harness: MakeHarness, engine: RuleEngine, exactly_once: bool
) -> None:
    # Given two exact duplicates, stage A done, and stage B's delivery about to fail once
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    h = make_harness(history=True, engine=engine, exactly_once=exactly_once)
    publish_sequence(h, sequence)
    h.loop.run_once()  # maintain (restore: nothing) ... poll input: stage A
    h.loop.run_once()  # the repartitioned claims come in the next polls
    assert len(h.broker.records(REPARTITION)) == 2
    failing = "commit_transaction" if exactly_once else "flush"
    h.producer.fail_next[failing].append(BrokerUnavailableError("broker down"))

    # When the stage B batch fails once and is processed again
    h.drain()

    # Then the first claim is clean and the second an exact duplicate of it, exactly once each in exactly_once
    verdicts = [json.loads(record.value) for topic in (PASS, FAIL) for record in h.broker.records(topic)]
    by_claim = {verdict["claim_id"]: history_findings(json.dumps(verdict).encode(), engine) for verdict in verdicts}
    assert by_claim == {"CLM-A": [], "CLM-B": ["J9353.DUPLICATE.EXACT", "J9353.DUPLICATE.EXACT"]}
    if exactly_once:
        assert len(verdicts) == 2


def test_a_restarted_worker_restores_history_from_the_changelog(make_harness: MakeHarness, engine: RuleEngine) -> None:
    # Given a worker that recorded claim A, then stopped (its in-memory stores are gone)
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    first = make_harness(history=True, engine=engine)
    first.publish(json.dumps(sequence.claims[0].document).encode(), key=b"CLM-A")
    first.drain()

    # When a new worker takes over the same topics and claim B arrives
    second = make_harness(history=True, engine=engine, broker=first.broker)
    second.publish(json.dumps(sequence.claims[1].document).encode(), key=b"CLM-B")
    second.drain()

    # Then it restored A's entries before judging B
    verdicts = verdicts_by_event(second)
    assert history_findings(json.dumps(verdicts[sequence.claims[1].document["event_id"]]).encode(), engine) == [
        "J9353.DUPLICATE.EXACT",
        "J9353.DUPLICATE.EXACT",
    ]
    assert second.metric("claims_history_restored_records_total", partition=_partition_of(second)) == 2


def test_a_persistent_store_reads_only_the_changelog_written_since(
    make_harness: MakeHarness, engine: RuleEngine, tmp_path: Path
) -> None:
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    first = make_harness(history=True, engine=engine, state_dir=tmp_path)
    first.publish(json.dumps(sequence.claims[0].document).encode(), key=b"CLM-A")
    first.drain()
    first.shutdown.request("test")
    first.loop.run()  # stops at once: closes the sink and the consumer
    assert first.history is not None
    first.history.partitions.close()

    second = make_harness(history=True, engine=engine, state_dir=tmp_path, broker=first.broker)
    second.publish(json.dumps(sequence.claims[1].document).encode(), key=b"CLM-B")
    second.drain()

    assert second.metric("claims_history_restored_records_total", partition=_partition_of(second)) == 0
    verdict = verdicts_by_event(second)[sequence.claims[1].document["event_id"]]
    assert history_findings(json.dumps(verdict).encode(), engine) == ["J9353.DUPLICATE.EXACT"] * 2


def test_an_at_least_once_restore_skips_changelog_writes_of_a_batch_that_was_never_committed(
    make_harness: MakeHarness, engine: RuleEngine
) -> None:
    # Given a worker that wrote the changelog of claims A and B (B a duplicate of A) and died before the commit
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    first = make_harness(history=True, engine=engine)
    publish_sequence(first, sequence)
    first.loop.run_once()  # stage A: both claims to the repartition topic
    assert len(first.broker.records(REPARTITION)) == 2
    # Stage B's batch: the changelog flush succeeds, then the process dies before the outputs' flush returns.
    first.producer.fail_on_flush[first.producer.flushes + 2] = RuntimeError("killed")
    with pytest.raises(RuntimeError, match="killed"):
        _run_until_history_batch(first)
    written = first.broker.records(CHANGELOG)
    assert written  # the crashed batch's changelog records are on the topic
    assert {tp: offset for tp, offset in first.broker.committed.items() if tp.topic == REPARTITION} == {}

    # When another worker restores and processes the repartitioned claims again
    second = make_harness(history=True, engine=engine, broker=first.broker)
    second.drain()

    # Then A is not judged a duplicate of B's entries from the crashed batch: the same verdicts as the rules' fold
    verdicts = verdicts_by_event(second)
    assert history_findings(json.dumps(verdicts[sequence.claims[0].document["event_id"]]).encode(), engine) == []
    assert (
        history_findings(json.dumps(verdicts[sequence.claims[1].document["event_id"]]).encode(), engine)
        == ["J9353.DUPLICATE.EXACT"] * 2
    )


def test_a_persistent_store_ahead_of_the_committed_offset_is_wiped_and_restored(
    make_harness: MakeHarness, engine: RuleEngine, tmp_path: Path
) -> None:
    # Given a worker with a state directory that wrote the changelog and its local store for claims A and B, and
    # died before the commit (at_least_once: the store's checkpoint is past the committed offset)
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    first = make_harness(history=True, engine=engine, state_dir=tmp_path)
    publish_sequence(first, sequence)
    first.loop.run_once()  # stage A: both claims to the repartition topic
    # From here on the broker takes no commit: stage B's outputs and store are written, its offsets stay pending.
    first.consumer.fail_next["commit"].extend(BrokerUnavailableError("outage") for _ in range(20))
    partition = int(_partition_of(first))
    assert first.history is not None
    for _ in range(10):
        first.loop.run_once()
        if first.history.partitions.stores[partition].checkpoint.source_offset == 2:
            break
    assert first.history.partitions.stores[partition].checkpoint.source_offset == 2
    assert TopicPartition(REPARTITION, partition) not in first.broker.committed
    first.history.partitions.close()  # the process is gone: its store locks with it

    # When the same replica starts again on that state directory
    second = make_harness(history=True, engine=engine, state_dir=tmp_path, broker=first.broker)
    second.drain()

    # Then the store is wiped (reopened on the same path, its lock released first) and restored without the
    # uncommitted batch: the same verdicts as the rules' fold
    assert second.metric("claims_history_store_rebuilds_total") == 1
    verdicts = verdicts_by_event(second)
    assert history_findings(json.dumps(verdicts[sequence.claims[0].document["event_id"]]).encode(), engine) == []
    assert (
        history_findings(json.dumps(verdicts[sequence.claims[1].document["event_id"]]).encode(), engine)
        == ["J9353.DUPLICATE.EXACT"] * 2
    )


def test_entries_expire_by_event_time_and_are_tombstoned(make_harness: MakeHarness, engine: RuleEngine) -> None:
    # Given claim A serviced 2026-11-02 and a retention of 30 days
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    h = make_harness(history=True, engine=engine, retention_days=30)
    h.publish(json.dumps(sequence.claims[0].document).encode(), key=b"CLM-A")
    h.drain()
    entries = [r for r in h.broker.records(CHANGELOG) if r.value is not None]

    # When a duplicate of A is filed 40 days after A's service date
    late = dict(sequence.claims[1].document, submitted_on="2026-12-12")
    h.publish(json.dumps(late).encode(), key=b"CLM-B")
    h.drain()

    # Then A is history no more: not a duplicate, and its entries are tombstoned on the changelog
    verdict = verdicts_by_event(h)[late["event_id"]]
    assert history_findings(json.dumps(verdict).encode(), engine) == []
    tombstones = {r.key for r in h.broker.records(CHANGELOG) if r.value is None}
    assert {r.key for r in entries} <= tombstones


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at_least_once", "exactly_once"])
def test_a_store_that_cannot_be_read_is_rebuilt_and_the_claim_judged_against_the_full_history(
    make_harness: MakeHarness, engine: RuleEngine, monkeypatch: pytest.MonkeyPatch, *, exactly_once: bool
) -> None:
    # Given a worker that recorded claim A, and whose store of A's partition then fails its next read (a corrupt
    # block: RocksDB ends the iteration early and reports it in the iterator's status)
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    h = make_harness(history=True, engine=engine, exactly_once=exactly_once)
    h.publish(json.dumps(sequence.claims[0].document).encode(), key=b"CLM-A")
    h.drain()
    assert h.history is not None
    partition = int(_partition_of(h))
    damaged = h.history.partitions.stores[partition]

    def unreadable(member_key: str) -> list[tuple[bytes, bytes]]:
        raise StoreError(f"cannot read the history store {damaged.name}: Exception: Corruption: block checksum")

    monkeypatch.setattr(damaged, "member_entries", unreadable)

    # When claim B, a duplicate of A, comes for that partition
    h.publish(json.dumps(sequence.claims[1].document).encode(), key=b"CLM-B")
    h.drain()

    # Then the store was rebuilt from the changelog and B judged against it: a duplicate, not a dead letter
    assert h.history.partitions.stores[partition] is not damaged
    assert h.metric("claims_history_store_rebuilds_total") == 1
    assert h.broker.records(DLQ) == []
    verdict = verdicts_by_event(h)[sequence.claims[1].document["event_id"]]
    assert history_findings(json.dumps(verdict).encode(), engine) == ["J9353.DUPLICATE.EXACT"] * 2
    verdicts_of_b = [
        record
        for topic in (PASS, FAIL)
        for record in h.broker.records(topic)
        if json.loads(record.value)["claim_id"] == "CLM-B"
    ]
    assert len(verdicts_of_b) == 1  # the failed batch delivered nothing


def test_a_store_with_a_damaged_block_on_disk_is_rebuilt_from_the_changelog(
    make_harness: MakeHarness, engine: RuleEngine, tmp_path: Path
) -> None:
    # Given a worker that recorded claim A in a persistent store and stopped; then a byte of the store's table file
    # flips (the store still opens: RocksDB reads data blocks only when asked for them)
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    first = make_harness(history=True, engine=engine, state_dir=tmp_path)
    first.publish(json.dumps(sequence.claims[0].document).encode(), key=b"CLM-A")
    first.drain()
    first.shutdown.request("test")
    first.loop.run()
    assert first.history is not None
    first.history.partitions.close()
    [table] = tmp_path.glob(f"*-{_partition_of(first)}/*.sst")
    data = bytearray(table.read_bytes())
    data[len(data) // 8] ^= 0xFF
    table.write_bytes(bytes(data))

    # When a new worker on the same state directory gets claim B, a duplicate of A
    second = make_harness(history=True, engine=engine, state_dir=tmp_path, broker=first.broker)
    second.publish(json.dumps(sequence.claims[1].document).encode(), key=b"CLM-B")
    second.drain()
    second.drain()

    # Then the damage was found (this small store keeps its checkpoint in the damaged block: at open), the store was
    # wiped and reopened (the failed open released its lock) and rebuilt, and B is a duplicate of A
    assert second.metric("claims_history_store_rebuilds_total") == 1
    assert second.broker.records(DLQ) == []
    verdict = verdicts_by_event(second)[sequence.claims[1].document["event_id"]]
    assert history_findings(json.dumps(verdict).encode(), engine) == ["J9353.DUPLICATE.EXACT"] * 2


def test_a_store_that_cannot_be_written_is_rebuilt_from_the_changelog_that_holds_the_batch(
    make_harness: MakeHarness, engine: RuleEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker whose store fails to write claim A's entries after the batch was delivered and committed
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    h = make_harness(history=True, engine=engine)
    h.publish(json.dumps(sequence.claims[0].document).encode(), key=b"CLM-A")
    h.loop.run_once()  # stage A: A to the repartition topic
    assert h.history is not None
    partition = int(_partition_of(h))
    damaged = h.history.partitions.stores[partition]

    def unwritable(changes: object, checkpoint: object) -> None:
        raise StoreError(f"cannot write the history store {damaged.name}: Exception")

    monkeypatch.setattr(damaged, "apply", unwritable)
    h.drain()
    assert h.metric("claims_history_store_rebuilds_total") == 1

    # When claim B, a duplicate of A, comes
    h.publish(json.dumps(sequence.claims[1].document).encode(), key=b"CLM-B")
    h.drain()

    # Then A's entries, restored from the changelog, make B a duplicate; A was judged once
    assert h.history.partitions.stores[partition] is not damaged
    verdicts = verdicts_by_event(h)
    assert (
        history_findings(json.dumps(verdicts[sequence.claims[1].document["event_id"]]).encode(), engine)
        == ["J9353.DUPLICATE.EXACT"] * 2
    )
    assert h.broker.records(DLQ) == []


def _partition_of(h: Harness) -> str:
    [deferred, *_] = h.broker.records(REPARTITION)
    return str(deferred.partition)


def _run_until_history_batch(h: Harness) -> None:
    for _ in range(10):
        h.loop.run_once()
