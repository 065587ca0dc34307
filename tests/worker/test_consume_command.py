"""`claims-worker consume`: the verdicts and dead letters read back from Kafka (U8). Against a real broker."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence

import pytest
from kafka import KafkaProducer

from rules.engine import load_engine
from schemas.verdict import SourceRecord
from tests.worker.conftest import REPO_ROOT
from worker.cli import main
from worker.evaluator import Verdict, evaluate_claim_bytes
from worker.exit_codes import ExitCode
from worker.routing import DLQ_ERROR, DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION, DLQ_SOURCE_TOPIC

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

NewTopic = Callable[..., str]
EXAMPLE_LINES = (REPO_ROOT / "examples" / "claims.jsonl").read_bytes().splitlines()
AT = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)


def _verdict(example: int, offset: int) -> tuple[bytes, bytes]:
    """(key, value) of the verdict the worker publishes for example line `example` read at `offset`."""
    result = evaluate_claim_bytes(
        load_engine(),
        EXAMPLE_LINES[example - 1],
        validated_at=AT,
        max_bytes=1 << 20,
        source=SourceRecord(topic="claims.submitted", partition=0, offset=offset),
    )
    assert isinstance(result, Verdict)
    return result.claim_id.encode(), result.value


DEAD_LETTER_HEADERS = [
    (DLQ_REASON, b"not_json"),
    (DLQ_ERROR, b"Expecting value: line 1 column 1 (char 0)"),
    (DLQ_SOURCE_TOPIC, b"claims.submitted"),
    (DLQ_SOURCE_PARTITION, b"0"),
    (DLQ_SOURCE_OFFSET, b"17"),
]


def _send(bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value, headers in records:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


@pytest.fixture
def broker_env(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CLAIMS_BOOTSTRAP_SERVERS", kafka_bootstrap)
    return kafka_bootstrap


def test_from_beginning_prints_every_verdict_as_jsonl_and_counts_on_stderr(
    broker_env: str, new_topic: NewTopic, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    topic = new_topic("fail")
    verdicts = [_verdict(2, 1), _verdict(4, 3)]
    _send(broker_env, topic, [(key, value, []) for key, value in verdicts])

    code = main(["consume", "fail", "--topic", topic, "--from-beginning"])
    captured = capsysbinary.readouterr()

    assert code == ExitCode.OK
    assert captured.out.splitlines() == [value for _, value in verdicts]
    assert captured.err.decode().splitlines() == [f"2 records from {topic}"]


def test_the_role_names_the_topic_of_the_settings(
    broker_env: str, new_topic: NewTopic, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    topic = new_topic("pass")
    monkeypatch.setenv("CLAIMS_PASS_TOPIC", topic)
    _send(broker_env, topic, [(*_verdict(1, 0), [])])

    assert main(["consume", "pass", "--from-beginning"]) == ExitCode.OK

    assert json.loads(capsysbinary.readouterr().out)["claim_id"] == "CLM-EX-0001"


def test_a_dead_letter_is_printed_with_its_reason_and_coordinates_not_its_value(
    broker_env: str, new_topic: NewTopic, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    topic = new_topic("dlq")
    original = b'{"claim_id": "CLM-X", "patient": {"member_id": "M-SECRET-1"'
    _send(broker_env, topic, [(b"CLM-X", original, DEAD_LETTER_HEADERS)])

    assert main(["consume", "dlq", "--topic", topic, "--from-beginning"]) == ExitCode.OK
    out = capsysbinary.readouterr().out

    assert b"M-SECRET-1" not in out
    assert json.loads(out) == {
        "schema_version": 1,
        "dead_letter": True,
        "reason": "not_json",
        "error": "Expecting value: line 1 column 1 (char 0)",
        "key": "CLM-X",
        "record": {"topic": topic, "partition": 0, "offset": 0},
        "source": {"topic": "claims.submitted", "partition": 0, "offset": 17},
    }


def test_table_format_shows_the_verdict_table(
    broker_env: str, new_topic: NewTopic, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    topic = new_topic("fail")
    _send(broker_env, topic, [(*_verdict(4, 3), []), (b"CLM-X", b"{", DEAD_LETTER_HEADERS)])

    assert main(["consume", "fail", "--topic", topic, "--from-beginning", "--format", "table"]) == ExitCode.OK
    lines = capsysbinary.readouterr().out.decode().splitlines()

    assert lines[0].split() == ["RECORD", "CLAIM", "OUTCOME"]
    assert lines[1].split() == ["0:0", "CLM-EX-0004", "fail", "(1", "error)"]
    assert "J9353.WASTE.JZ_MISSING  CARC CO-16  RARC N822" in lines[2]
    assert any(line.strip().startswith("fix: ") for line in lines)
    assert lines[-1].split()[:4] == ["0:1", "CLM-X", "dead", "letter:"]


def test_max_records_stops_after_that_many(
    broker_env: str, new_topic: NewTopic, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    topic = new_topic("pass")
    _send(broker_env, topic, [(*_verdict(1, n), []) for n in range(5)])

    assert main(["consume", "pass", "--topic", topic, "--from-beginning", "--max-records", "2"]) == ExitCode.OK

    assert len(capsysbinary.readouterr().out.splitlines()) == 2


def test_only_committed_records_are_read(
    broker_env: str, new_topic: NewTopic, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # Given a committed transaction, an aborted one and one still open (as an exactly_once worker leaves them)
    topic = new_topic("pass")
    producer = KafkaProducer(bootstrap_servers=broker_env, transactional_id=f"tests-consume-{uuid.uuid4().hex}")
    try:
        producer.init_transactions()
        for claim, finish in (("committed", producer.commit_transaction), ("aborted", producer.abort_transaction)):
            producer.begin_transaction()
            producer.send(topic, key=claim.encode(), value=json.dumps({"claim": claim}).encode())
            finish()
        producer.begin_transaction()
        producer.send(topic, key=b"open", value=b'{"claim": "open"}')
        producer.flush(timeout=30)

        # When consume reads the topic from its beginning
        code = main(["consume", "pass", "--topic", topic, "--from-beginning", "--timeout-s", "10"])
    finally:
        producer.close(timeout=5)

    # Then it ends at the last stable offset, with the committed record only
    assert code == ExitCode.OK
    assert [json.loads(line)["claim"] for line in capsysbinary.readouterr().out.splitlines()] == ["committed"]


def test_without_from_beginning_only_new_records_are_read_and_follow_waits_for_them(
    kafka_bootstrap: str, new_topic: NewTopic
) -> None:
    topic = new_topic("fail")
    _send(kafka_bootstrap, topic, [(*_verdict(2, 1), [])])  # before consume starts: not shown
    env = {**os.environ, "CLAIMS_BOOTSTRAP_SERVERS": kafka_bootstrap}
    command = [
        sys.executable,
        "-m",
        "worker.cli",
        "consume",
        "fail",
        "--topic",
        topic,
        "--follow",
        "--max-records",
        "2",
    ]
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(5)  # let it start reading at the end (a record sent before that would be skipped, and fail this)
        later = [_verdict(4, 3), _verdict(6, 5)]
        _send(kafka_bootstrap, topic, [(key, value, []) for key, value in later])
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()

    assert process.returncode == ExitCode.OK, err
    assert out.splitlines() == [value for _, value in later]


def test_follow_ends_cleanly_on_sigint(kafka_bootstrap: str, new_topic: NewTopic) -> None:
    topic = new_topic("pass")
    env = {**os.environ, "CLAIMS_BOOTSTRAP_SERVERS": kafka_bootstrap}
    command = [sys.executable, "-m", "worker.cli", "consume", "pass", "--topic", topic, "--follow", "--from-beginning"]
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _send(kafka_bootstrap, topic, [(*_verdict(1, 0), [])])
        time.sleep(5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()

    assert process.returncode == ExitCode.OK, err
    assert len(out.splitlines()) == 1
    assert err.decode().splitlines()[-1] == f"1 records from {topic}"


def test_a_topic_that_does_not_exist_is_a_configuration_error(
    broker_env: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    topic = f"t.absent.{uuid.uuid4().hex[:8]}"

    code = main(["consume", "pass", "--topic", topic, "--timeout-s", "3"])

    assert code == ExitCode.CONFIG
    assert f"topic {topic}".encode() in capsysbinary.readouterr().err
