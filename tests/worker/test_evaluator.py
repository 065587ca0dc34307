"""Rules in child processes: the same bytes as in process, in record order, and a failing child is not fatal."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.claims import generate, load_templates
from rules.engine import RuleEngine, load_engine
from tests.worker import claims
from tests.worker.conftest import DLQ, FAIL, PASS, REPO_ROOT, Harness
from tests.worker.engines import ScriptedEngine
from tests.worker.test_loop import publish_mixed, verdicts
from worker.evaluator import (
    DeadLettered,
    Evaluation,
    EvaluatorError,
    ProcessEvaluator,
    RecordItem,
    Verdict,
    evaluate_item,
)
from worker.kafka_io import BrokerUnavailableError, TopicPartition
from worker.routing import DLQ_REASON

pytestmark = pytest.mark.timeout(60)

VALIDATED_AT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
MakeHarness = Callable[..., Harness]
MakeEvaluator = Callable[..., ProcessEvaluator]


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return load_engine()


@pytest.fixture
def make_evaluator() -> Iterator[MakeEvaluator]:
    made: list[ProcessEvaluator] = []

    def make(engine: Any, processes: int = 1, **options: Any) -> ProcessEvaluator:
        made.append(ProcessEvaluator(engine, processes, **options))
        return made[-1]

    yield make
    for evaluator in made:
        evaluator.close(timeout_s=2.0)


def _items(values: list[bytes]) -> list[RecordItem]:
    return [(value, "claims.submitted", offset % 3, offset, [("trace", b"t")]) for offset, value in enumerate(values)]


def _without_timing(results: list[Evaluation]) -> list[Evaluation]:
    return [result._replace(duration_s=0.0) for result in results]


def _verdict(result: Evaluation) -> Verdict:
    assert isinstance(result, Verdict), result
    return result


def _all(evaluator: ProcessEvaluator, items: list[RecordItem]) -> list[Evaluation]:
    return [
        result for chunk in evaluator.evaluate(items, validated_at=VALIDATED_AT, max_bytes=1 << 20) for result in chunk
    ]


def test_children_give_the_same_outputs_byte_for_byte_as_evaluating_in_process(
    engine: RuleEngine, make_evaluator: MakeEvaluator
) -> None:
    # Given every example line and generated claims of every kind
    values = [template.raw for template in load_templates()] + [value for _, value in generate(300, seed=4)]
    items = _items(values)
    evaluator = make_evaluator(engine, 2, chunk_records=37)

    # When they are evaluated by the children and in process
    children = _all(evaluator, items)
    here = [evaluate_item(engine, item, VALIDATED_AT, 1 << 20) for item in items]

    # Then the verdict bytes, outcomes, findings and dead letters are the same, in the same order
    assert _without_timing(children) == _without_timing(here)
    assert {result.reason.value for result in here if isinstance(result, DeadLettered)} == {
        "not_json",
        "unsupported_schema_version",
    }


def test_results_come_back_in_record_order_across_chunks_and_children(make_evaluator: MakeEvaluator) -> None:
    evaluator = make_evaluator(ScriptedEngine(), 3, chunk_records=4)
    values = [claims.valid(f"PASS-{n}") for n in range(50)]

    results = _all(evaluator, _items(values))

    verdicts_ = [_verdict(result) for result in results]
    assert [verdict.claim_id for verdict in verdicts_] == [f"PASS-{n}" for n in range(50)]
    assert all(json.loads(verdict.value)["source"]["offset"] == n for n, verdict in enumerate(verdicts_))


def test_results_of_an_abandoned_batch_are_not_taken_for_the_next_one(make_evaluator: MakeEvaluator) -> None:
    evaluator = make_evaluator(ScriptedEngine(), 1, chunk_records=2, min_batch_records=1)
    first = evaluator.evaluate(_items([claims.valid(f"PASS-{n}") for n in range(10)]), validated_at=VALIDATED_AT,
                               max_bytes=1 << 20)  # fmt: skip
    next(first)  # the batch's production failed after its first chunk
    first.close()

    results = _all(evaluator, _items([claims.valid(f"FAIL-{n}") for n in range(3)]))

    assert [_verdict(result).claim_id for result in results] == ["FAIL-0", "FAIL-1", "FAIL-2"]


def test_a_dead_child_is_an_evaluator_error(make_evaluator: MakeEvaluator) -> None:
    evaluator = make_evaluator(ScriptedEngine(), 1)
    _kill_child(evaluator)

    with pytest.raises(EvaluatorError, match="failed"):
        _all(evaluator, _items([claims.valid("PASS-1")]))


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at_least_once", "exactly_once"])
def test_the_loop_with_children_routes_every_record_as_without(
    make_harness: MakeHarness, make_evaluator: MakeEvaluator, exactly_once: bool
) -> None:
    h = make_harness(
        exactly_once=exactly_once, children=make_evaluator(ScriptedEngine(), 1, chunk_records=2, min_batch_records=1)
    )
    publish_mixed(h)

    h.drain()

    assert verdicts(h, PASS) == {"PASS-1": "pass", "NA-1": "not_applicable"}
    assert verdicts(h, FAIL) == {"FAIL-1": "fail", "SCHEMA-1": "fail"}
    reasons = {r.key: dict(r.headers)[DLQ_REASON] for r in h.broker.records(DLQ)}
    assert reasons == {b"BAD-1": b"not_json", b"V2-1": b"unsupported_schema_version"}
    assert h.broker.committed == {TopicPartition("in", 0): 3, TopicPartition("in", 1): 3}
    assert h.metric("claims_verdicts_total", outcome="fail") == 2


def test_a_failed_flush_with_children_reprocesses_the_batch_and_commits_once(
    make_harness: MakeHarness, make_evaluator: MakeEvaluator
) -> None:
    h = make_harness(children=make_evaluator(ScriptedEngine(), 1, chunk_records=2, min_batch_records=1))
    publish_mixed(h)
    h.producer.fail_next["flush"].append(BrokerUnavailableError("broker down"))

    h.loop.run_once()
    assert h.broker.committed == {}
    h.drain()

    assert len(h.broker.records(PASS)) + len(h.broker.records(FAIL)) + len(h.broker.records(DLQ)) == 6
    assert h.broker.committed == {TopicPartition("in", 0): 3, TopicPartition("in", 1): 3}


def test_when_the_child_dies_the_loop_evaluates_the_batch_itself_and_goes_on(
    make_harness: MakeHarness, make_evaluator: MakeEvaluator
) -> None:
    # Given a loop whose evaluator child has died
    evaluator = make_evaluator(ScriptedEngine(), 1, min_batch_records=1)
    _kill_child(evaluator)
    h = make_harness(children=evaluator)
    publish_mixed(h)

    # When it processes a batch
    h.drain()

    # Then every record still gets its one output and the loop no longer uses children
    assert verdicts(h, PASS) == {"PASS-1": "pass", "NA-1": "not_applicable"}
    assert verdicts(h, FAIL) == {"FAIL-1": "fail", "SCHEMA-1": "fail"}
    assert len(h.broker.records(DLQ)) == 2
    assert h.evaluator.children is None


def test_a_child_ends_by_itself_when_its_parent_is_killed(tmp_path: Path) -> None:
    # Given a process with an evaluator child
    script = tmp_path / "parent.py"
    script.write_text(
        "import time\n"
        "from tests.worker.engines import ScriptedEngine\n"
        "from worker.evaluator import ProcessEvaluator\n"
        "evaluator = ProcessEvaluator(ScriptedEngine(), 1)\n"
        "print(evaluator.pids[0], flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # When the parent is killed without a chance to stop it
        parent.kill()
        parent.wait(10)
        # Then the child notices within a few seconds and exits
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and _state(child) != "Z" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{child}").exists() or _state(child) == "Z"
    finally:
        parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


def _kill_child(evaluator: ProcessEvaluator) -> None:
    [pid] = evaluator.pids
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _state(pid) not in ("Z", "gone") and time.monotonic() < deadline:
        time.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def test_small_batches_are_evaluated_in_the_loop_and_large_ones_by_the_children(
    make_harness: MakeHarness, make_evaluator: MakeEvaluator
) -> None:
    evaluator = make_evaluator(ScriptedEngine(), 1, chunk_records=10, min_batch_records=20)
    h = make_harness(batch_max_records=100, children=evaluator)
    for n in range(5):
        h.publish(claims.valid(f"PASS-{n}"), key=f"PASS-{n}".encode())
    h.drain()
    assert evaluator.chunks == 0

    for n in range(30):
        h.publish(claims.valid(f"FAIL-{n}"), key=f"FAIL-{n}".encode())
    h.drain()

    assert evaluator.chunks == 3
    assert len(verdicts(h, PASS)) == 5
    assert len(verdicts(h, FAIL)) == 30
