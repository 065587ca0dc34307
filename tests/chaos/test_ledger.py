"""The chaos harness' accounting: an output is matched to its input by coordinates; lost, doubled and stray
outputs are counted exactly (a harness that miscounted would pass every scenario)."""

from __future__ import annotations

import json
from collections import Counter

from chaos.ledger import Coordinates, Tally
from chaos.traffic import claims
from worker.routing import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION, DLQ_SOURCE_TOPIC
from worker.topic_reader import input_answered as source_of


def verdict(partition: int, offset: int) -> bytes:
    return json.dumps({"claim_id": "C", "source": {"topic": "in", "partition": partition, "offset": offset}}).encode()


def test_a_verdict_names_its_input_in_source() -> None:
    assert source_of(verdict(2, 41), None) == ("in", 2, 41)


def test_a_dead_letter_names_its_input_in_its_headers_whatever_its_value() -> None:
    headers = [
        (DLQ_REASON, b"not_json"),
        (DLQ_SOURCE_TOPIC, b"in"),
        (DLQ_SOURCE_PARTITION, b"1"),
        (DLQ_SOURCE_OFFSET, b"7"),
    ]

    assert source_of(verdict(5, 5), headers) == ("in", 1, 7)
    assert source_of(b"\xff not json", headers) == ("in", 1, 7)


def test_an_output_that_names_no_input_has_no_source() -> None:
    assert source_of(b"not json", None) is None
    assert source_of(json.dumps({"source": None}).encode(), []) is None


def test_the_tally_counts_lost_doubled_and_stray_outputs() -> None:
    inputs: set[Coordinates] = {("in", 0, offset) for offset in range(5)}
    answered: Counter[Coordinates | None] = Counter(
        {("in", 0, 0): 1, ("in", 0, 1): 3, ("in", 0, 2): 1, ("in", 0, 9): 1, None: 2}
    )

    tally = Tally.of(inputs, answered)

    assert (tally.inputs, tally.outputs) == (5, 8)
    assert (tally.lost, tally.lost_sample) == (2, [("in", 0, 3), ("in", 0, 4)])
    assert (tally.duplicates, tally.duplicate_sample) == (2, [("in", 0, 1)])
    assert tally.unexpected == 3


def test_the_generated_claims_have_unique_ids_and_keep_the_examples_unreadable_lines() -> None:
    records = claims(60, "r1")

    keys = [key for key, _ in records if key is not None]
    assert len(keys) == len(set(keys))
    assert any(key is None for key, _ in records)  # the examples' dead-letter lines, kept byte for byte
    assert all(json.loads(value)["claim_id"].encode() == key for key, value in records if key is not None)
