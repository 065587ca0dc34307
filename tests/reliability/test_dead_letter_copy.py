"""A dead letter's copy of its record is bounded, so that no input can make its own dead letter unwritable.

An input the broker took can be too big to write again with dead-letter headers; that batch would then fail on
every retry and the worker would exit and restart onto the same record for ever (found with a 10 MiB input:
exit 1, in a loop). The copy keeps the original key, value and headers up to the worker's size limit, and
otherwise leaves out the value (then the headers, then the key) and says so in `dlq.omitted`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.worker import claims
from tests.worker.conftest import DLQ
from worker.routing import DLQ_OMITTED, DLQ_REASON, DLQ_SOURCE_OFFSET

MakeHarness = Callable[..., Any]
LIMIT = 1024 * 1024  # the harness runs with the default CLAIMS_MAX_RECORD_BYTES


def test_a_dead_letter_within_the_limit_copies_key_value_and_headers_unchanged(make_harness: MakeHarness) -> None:
    h = make_harness()
    original = b"{" + b"x" * (LIMIT // 2)
    h.publish(original, key=b"HALF-1")

    h.drain()

    [letter] = h.broker.records(DLQ)
    headers = dict(letter.headers)
    assert (letter.key, letter.value, headers["trace"]) == (b"HALF-1", original, b"abc")
    assert DLQ_OMITTED not in headers


def test_a_too_large_value_is_left_out_of_its_dead_letter_and_the_loop_goes_on(make_harness: MakeHarness) -> None:
    h = make_harness()
    big = b'{"claim_id": "BIG-1", "pad": "' + b"p" * (10 * LIMIT) + b'"}'
    h.publish(big, key=b"BIG-1")
    h.publish(claims.valid("NEXT-1"), key=b"NEXT-1")

    h.drain()

    [letter] = h.broker.records(DLQ)
    headers = dict(letter.headers)
    assert headers[DLQ_REASON] == b"too_large"
    assert (letter.key, letter.value, headers["trace"]) == (b"BIG-1", b"", b"abc")
    assert headers[DLQ_OMITTED] == f"value={len(big)}".encode()
    assert headers[DLQ_SOURCE_OFFSET] == b"0"  # where operators find the original
    assert len(h.broker.records("pass")) + len(h.broker.records("fail")) == 1


def test_a_value_just_under_the_limit_is_left_out_when_the_headers_would_push_it_over(
    make_harness: MakeHarness,
) -> None:
    h = make_harness()
    h.publish(b"<" * (LIMIT - 100), key=b"EDGE-1")  # not JSON: a not_json dead letter, not too_large

    h.drain()

    [letter] = h.broker.records(DLQ)
    assert dict(letter.headers)[DLQ_REASON] == b"not_json"
    assert letter.value == b""
    assert dict(letter.headers)[DLQ_OMITTED] == f"value={LIMIT - 100}".encode()


def test_a_huge_key_is_left_out_after_the_value_and_the_headers(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.publish(b"not json", key=b"k" * (2 * LIMIT))

    h.drain()

    [letter] = h.broker.records(DLQ)
    headers = dict(letter.headers)
    assert (letter.key, letter.value) == (None, b"")
    assert "trace" not in headers
    assert headers[DLQ_OMITTED] == f"value=8,headers=1,key={2 * LIMIT}".encode()
    assert headers[DLQ_REASON] == b"not_json"
