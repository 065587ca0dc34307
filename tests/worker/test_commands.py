"""`claims-worker publish`, `topics create` and `run`'s configuration errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.structs import TopicPartition as KafkaTopicPartition

from tests.worker import claims
from tests.worker.conftest import REPO_ROOT
from worker.cli import main
from worker.commands.publish import claim_key, read_lines
from worker.topic_set import TopicSet

pytestmark = pytest.mark.timeout(120)


def test_the_key_of_a_line_is_its_claim_id_when_it_has_one() -> None:
    assert claim_key(claims.valid("C-1")) == b"C-1"
    assert claim_key(claims.unknown_version("C-2")) == b"C-2"
    assert claim_key(claims.malformed("C-3")) is None
    assert claim_key(b"[1, 2]") is None
    assert claim_key(b'{"claim_id": 7}') is None


def test_lines_are_read_as_bytes_without_endings_and_blank_lines_are_skipped() -> None:
    stream = io.BytesIO(b'{"a": 1}\r\n\n   \n{"b": "\xc3\xa9"}')
    assert list(read_lines(stream)) == [b'{"a": 1}', b'{"b": "\xc3\xa9"}']


def test_run_with_an_invalid_setting_exits_with_the_configuration_code_and_names_it() -> None:
    env = {**os.environ, "CLAIMS_DELIVERY": "sometimes", "CLAIMS_SASL_PASSWORD": "p4ssw0rd"}
    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "run"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert "CLAIMS_DELIVERY" in result.stderr
    assert "p4ssw0rd" not in result.stderr + result.stdout


@pytest.mark.kafka
def test_topics_create_makes_the_six_topics_with_a_compacted_changelog_and_is_idempotent(
    kafka_bootstrap: str,
    kafka_admin: KafkaAdminClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topics = TopicSet.prefixed(f"t.cli.{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("CLAIMS_BOOTSTRAP_SERVERS", kafka_bootstrap)
    for name, topic in topics.env().items():
        monkeypatch.setenv(name, topic)
    names = list(topics.env().values())
    try:
        assert main(["topics", "create", "--partitions", "2"]) == 0
        assert main(["topics", "create", "--partitions", "2"]) == 0
        described = kafka_admin.describe_topics(names)
        assert sorted(len(topic["partitions"]) for topic in described) == [2] * 6
        output = capsys.readouterr().out
        assert output.count("created") == 6
        assert output.count("exists") == 6
        assert f"created  {topics.changelog} (partitions=2, replication_factor=1, cleanup.policy=compact)" in output
        configs = kafka_admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topics.changelog)])
        assert configs["topic"][topics.changelog]["cleanup.policy"]["value"] == "compact"
    finally:
        kafka_admin.delete_topics(names)


@pytest.mark.kafka
def test_topics_create_without_history_makes_the_four_topics(
    kafka_bootstrap: str,
    kafka_admin: KafkaAdminClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topics = TopicSet.prefixed(f"t.cli.{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("CLAIMS_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("CLAIMS_HISTORY", "off")
    for name, topic in topics.env().items():
        monkeypatch.setenv(name, topic)
    try:
        assert main(["topics", "create", "--partitions", "2"]) == 0
        assert capsys.readouterr().out.count("created") == 4
        assert topics.repartition not in set(kafka_admin.list_topics())
    finally:
        kafka_admin.delete_topics([topics.input, *topics.outputs])


@pytest.mark.kafka
def test_publish_sends_each_line_unchanged_keyed_by_claim_id(
    kafka_bootstrap: str, new_topic: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = new_topic("in")  # type: ignore[operator]
    lines = [claims.valid("C-1"), claims.malformed("C-2"), claims.unknown_version("C-3")]
    source = tmp_path / "claims.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n\n")
    monkeypatch.setenv("CLAIMS_BOOTSTRAP_SERVERS", kafka_bootstrap)

    assert main(["publish", str(source), "--topic", topic]) == 0

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        partition = KafkaTopicPartition(topic, 0)
        consumer.assign([partition])
        received = []
        for _ in range(50):
            for records in consumer.poll(timeout_ms=200).values():
                received.extend((record.key, record.value) for record in records)
            if len(received) >= 3:
                break
    finally:
        consumer.close()
    assert received == [(b"C-1", lines[0]), (None, lines[1]), (b"C-3", lines[2])]
