"""The duplicate-key check of valid claims: the key count in the raw bytes, and the full read behind it (which parses
integers in C and falls back for integers too long for int())."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.claim import ClaimSubmitted
from schemas.parsing import (
    DeadLetter,
    DeadLetterReason,
    ParsedClaim,
    _checked_claim,
    _key_count_bound,
    parse_claim_event,
)
from schemas.unknown_fields import known_field_count
from tests.worker.claims import claim_document


def _with_unknown_field(literal: str) -> bytes:
    text = json.dumps(claim_document("CLM-1"))
    return ('{"note": ' + literal + ", " + text[1:]).encode()


def test_a_valid_claim_with_a_huge_integer_in_an_unknown_field_is_parsed() -> None:
    assert isinstance(parse_claim_event(_with_unknown_field("9" * 5000)), ParsedClaim)


def test_a_duplicate_key_after_a_huge_integer_is_still_found() -> None:
    raw = _with_unknown_field("9" * 5000).replace(b'"claim_id": "CLM-1"', b'"claim_id": "CLM-1", "claim_id": "CLM-2"')

    result = parse_claim_event(raw)

    assert isinstance(result, DeadLetter)
    assert result.reason is DeadLetterReason.NOT_JSON


# ----------------------------------------------------------------------------- the key count in the raw bytes
# A valid claim whose keys, counted in its bytes, are no more than the fields the model took skips the second full
# read. The property: with duplicate keys, unknown keys, odd whitespace and strings that look like keys, the result
# is the one the full read gives.

_Pairs = list[tuple[str, Any]]

_ITEM_SEPARATORS = [",", ", ", " ,", ",\n  ", "\t,\r\n"]
_KEY_SEPARATORS = [":", ": ", " :", " : ", "\t:", "\n:\n"]
_TRICKY_STRINGS = [":x", " :y", '", "claim_id": "', 'a"b', "é", "\\", "note", '":"']


def _pairs(value: Any) -> Any:
    if isinstance(value, dict):
        return [(key, _pairs(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_pairs(item) for item in value]
    return value


def _render(value: Any, item_separator: str, key_separators: Iterator[str]) -> str:
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        inner = item_separator.join(
            json.dumps(key) + next(key_separators) + _render(item, item_separator, key_separators)
            for key, item in value
        )
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + item_separator.join(_render(item, item_separator, key_separators) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _objects(document: _Pairs) -> list[_Pairs]:
    found = [document]
    for _, value in document:
        if isinstance(value, list) and value and isinstance(value[0], tuple):
            found.extend(_objects(value))
        elif isinstance(value, list):
            found.extend(obj for item in value if isinstance(item, list) and item and isinstance(item[0], tuple)
                         for obj in _objects(item))  # fmt: skip
    return found


@st.composite
def _claim_bytes(draw: st.DrawFn) -> bytes:
    document = _pairs(claim_document("CLM-1"))
    objects = _objects(document)
    patient = next(value for key, value in document if key == "patient")
    all_keys = sorted({key for obj in objects for key, _ in obj})
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(objects))
        if draw(st.booleans()) and target:
            key, value = draw(st.sampled_from(target))  # a duplicate, same value
        else:
            key = draw(st.sampled_from([*all_keys, "note", "x-trace"]))
            value = draw(st.one_of(st.sampled_from(_TRICKY_STRINGS), st.integers(-5, 5), st.none()))
        target.insert(draw(st.integers(0, len(target))), (key, value))
    if draw(st.booleans()):
        patient.append(("note", draw(st.sampled_from(_TRICKY_STRINGS))))
    item_separator = draw(st.sampled_from(_ITEM_SEPARATORS))
    # One key separator for most keys, another now and then (a spaced key among unspaced ones).
    usual, other = draw(st.sampled_from(_KEY_SEPARATORS)), draw(st.sampled_from(_KEY_SEPARATORS))
    every = draw(st.integers(2, 40))
    key_separators = (other if index % every == 0 else usual for index in itertools.count(1))
    return _render(document, item_separator, key_separators).encode()


def _summary(result: object) -> object:
    if isinstance(result, ParsedClaim):
        return ("parsed", result.claim, result.unknown_fields)
    return result


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_claim_bytes())
def test_the_raw_key_count_gives_what_the_full_read_gives(raw: bytes) -> None:
    try:
        claim = ClaimSubmitted.model_validate_json(raw)
    except ValidationError:
        return  # not a claim the model accepts: the key count is not used
    full = _checked_claim(raw, claim, known_field_count(claim))

    assert _summary(parse_claim_event(raw)) == _summary(full)


def test_a_plain_claim_needs_no_second_read() -> None:
    for separators in ((",", ":"), (", ", ": ")):
        raw = json.dumps(claim_document("CLM-1"), separators=separators).encode()
        claim = ClaimSubmitted.model_validate_json(raw)

        assert _key_count_bound(raw) == known_field_count(claim)


def test_a_duplicate_key_spaced_before_its_colon_is_still_found() -> None:
    raw = json.dumps(claim_document("CLM-1")).replace('"claim_id": "CLM-1"', '"claim_id" : "CLM-1", "claim_id":"CLM-2"')

    result = parse_claim_event(raw.encode())

    assert isinstance(result, DeadLetter)
    assert result.reason is DeadLetterReason.NOT_JSON
