"""Claim history on the real broker: the same claim sequence gives the same findings through Kafka as offline,
in both delivery modes, and a restarted worker restores its history from the changelog."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rules.engine import RuleEngine, load_engine
from tests.rules.test_history_sequences import SEQUENCES
from tests.worker.conftest import Topics, WorkerProcess, publish, read_outputs
from tests.worker.history.test_history_loop import history_findings
from worker.cli import main

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

MakeTopics = Callable[..., Topics]
StartWorker = Callable[..., WorkerProcess]
AT = "2026-11-27T12:00:00Z"
# Sequences whose claims all go to one member (one repartition partition keeps their order).
ONE_MEMBER = [s for s in SEQUENCES if len({c.document["patient"]["member_id"] for c in s.claims}) == 1]


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return load_engine()


def _offline(
    documents: list[dict[str, object]], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> list[bytes]:
    path = tmp_path / "sequence.jsonl"
    path.write_text("".join(json.dumps(document) + "\n" for document in documents), encoding="utf-8")
    capsysbinary.readouterr()
    assert main(["validate", str(path), "--validated-at", AT, "--exit-zero"]) == 0  # the findings are compared
    return capsysbinary.readouterr().out.splitlines()


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_every_sequence_gives_the_same_findings_through_kafka_as_offline(
    kafka_bootstrap: str,
    worker_topics: MakeTopics,
    start_worker: StartWorker,
    engine: RuleEngine,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    delivery: str,
) -> None:
    # Given every one-member sequence, each with its own member, published in order on one input partition
    documents: list[dict[str, object]] = []
    for number, sequence in enumerate(ONE_MEMBER):
        for claim in sequence.claims:
            document = json.loads(json.dumps(claim.document))
            document["patient"]["member_id"] = f"MBR-SEQ-{number}"
            document["claim_id"] = f"S{number}-{document['claim_id']}"
            if document.get("original_claim_id"):
                document["original_claim_id"] = f"S{number}-{document['original_claim_id']}"
            documents.append(document)
    expected = {
        json.loads(line)["source_event_id"]: history_findings(line, engine)
        for line in _offline(documents, tmp_path, capsysbinary)
    }
    topics = worker_topics(partitions=1, history_partitions=3)
    publish(kafka_bootstrap, topics.input, [(str(d["claim_id"]).encode(), json.dumps(d).encode()) for d in documents])

    # When a worker judges them through both stages
    worker = start_worker(topics, delivery=delivery, group_id=f"g.{delivery}.{tmp_path.name}")
    outputs = read_outputs(kafka_bootstrap, topics.outputs, expected=len(documents))
    assert worker.stop() == 0

    # Then each claim has one verdict with the findings `validate` gives offline
    found = {json.loads(o.value)["source_event_id"]: history_findings(o.value, engine) for o in outputs}
    assert len(outputs) == len(documents)
    assert found == expected
    assert any(findings for findings in expected.values())


def test_a_restarted_worker_restores_its_history_from_the_changelog(
    kafka_bootstrap: str, worker_topics: MakeTopics, start_worker: StartWorker, engine: RuleEngine, tmp_path: Path
) -> None:
    # Given a worker that judged claim A and stopped, and whose local store is then deleted
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    first_claim, second_claim = (claim.document for claim in sequence.claims)
    topics = worker_topics(partitions=1)
    group = f"g.restore.{tmp_path.name}"
    publish(kafka_bootstrap, topics.input, [(b"CLM-A", json.dumps(first_claim).encode())])
    first = start_worker(topics, group_id=group, worker_id="restore-worker", state_dir=str(tmp_path / "state"))
    read_outputs(kafka_bootstrap, topics.outputs, expected=1)
    assert first.stop() == 0

    # When a second worker, with an empty state directory, gets claim B (an exact duplicate of A)
    publish(kafka_bootstrap, topics.input, [(b"CLM-B", json.dumps(second_claim).encode())])
    second = start_worker(topics, group_id=group, worker_id="restore-worker", state_dir=str(tmp_path / "empty"))
    outputs = read_outputs(kafka_bootstrap, topics.outputs, expected=2)
    restored = second.wait_for_event("history.restored", predicate=lambda line: line["records"] > 0)
    assert second.stop() == 0

    # Then it rebuilt A's entries from the changelog and flagged B
    verdict = next(o for o in outputs if json.loads(o.value)["claim_id"] == "CLM-B")
    assert history_findings(verdict.value, engine) == ["J9353.DUPLICATE.EXACT", "J9353.DUPLICATE.EXACT"]
    assert restored["records"] == 2
