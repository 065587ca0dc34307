"""Unknown fields of a claim.submitted v1 event: tolerated, but each one found with its path and the closest known
field (issue 17, U4); and the cheap check that keeps the common case fast never misses one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.parsing import ParsedClaim, SchemaFailure, parse_claim_event
from schemas.unknown_fields import UnknownField, find_unknown_fields, known_field_count

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_LINES = (REPO_ROOT / "examples" / "claims.jsonl").read_bytes().splitlines()


def _example(number: int = 1) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE_LINES[number - 1])
    return document


def _parsed(document: dict[str, Any]) -> ParsedClaim | SchemaFailure:
    result = parse_claim_event(json.dumps(document).encode())
    assert isinstance(result, ParsedClaim | SchemaFailure), result
    return result


def test_a_misspelt_line_field_is_found_with_its_closest_known_name() -> None:
    document = _example()
    document["lines"][0]["modifers"] = document["lines"][0].pop("modifiers")

    result = _parsed(document)

    assert isinstance(result, ParsedClaim)
    assert result.unknown_fields == (UnknownField("lines[0].modifers", 1, "modifiers"),)


def test_a_misspelt_required_field_is_found_on_the_schema_failure_too() -> None:
    document = _example()
    document["patinet"] = document.pop("patient")

    result = _parsed(document)

    assert isinstance(result, SchemaFailure)
    assert result.unknown_fields == (UnknownField("patinet", None, "patient"),)


def test_nested_objects_are_searched_with_their_own_field_names() -> None:
    document = _example()
    document["lines"][0]["administration"]["dose_mgs"] = 1050
    document["payer"]["nmae"] = "x"

    result = _parsed(document)

    assert set(result.unknown_fields) == {
        UnknownField("lines[0].administration.dose_mgs", 1, "dose_mg"),
        UnknownField("payer.nmae", None, "name"),
    }


def test_a_known_name_in_the_wrong_object_is_unknown_there() -> None:
    document = _example()
    document["units"] = 3

    [found] = _parsed(document).unknown_fields

    assert found.path == "units"
    assert found.suggestion != "units"


def test_a_field_unlike_any_known_one_has_no_suggestion() -> None:
    document = _example()
    document["producer_trace_id"] = "abc"

    assert _parsed(document).unknown_fields == (UnknownField("producer_trace_id", None, None),)


def test_an_unknown_object_is_one_unknown_field_its_contents_are_not_searched() -> None:
    document = _example()
    document["extension"] = {"a": {"b": 1}, "c": [{"d": 2}]}

    assert [found.path for found in _parsed(document).unknown_fields] == ["extension"]


def test_a_key_that_is_not_a_field_name_is_not_repeated() -> None:
    # Producers sometimes key objects by data (a member id, a name): such a key is not echoed.
    document = _example()
    document["patient"]["Jane Doe 1961-04-12"] = True

    [found] = _parsed(document).unknown_fields

    assert "Jane" not in found.path
    assert found.path.startswith("patient.")


def test_a_claim_without_unknown_fields_has_none() -> None:
    for number in (1, 2, 4, 15):
        result = _parsed(_example(number))
        assert result.unknown_fields == ()


# --- the cheap check -------------------------------------------------------------------------------------------------


def _key_count(value: object) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_key_count(item) for item in value.values())
    if isinstance(value, list):
        return sum(_key_count(item) for item in value)
    return 0


def _objects(value: object) -> list[dict[str, Any]]:
    """Every JSON object in `value`, outermost first."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found.extend(_objects(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_objects(item))
    return found


_FIELD_NAMES = st.sampled_from(
    ["units", "line_number", "code", "npi", "id", "type", "name", "modifers", "patinet", "drug", "number", "x"]
)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_FIELD_NAMES, children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    example=st.sampled_from([1, 3, 4, 5, 6, 7, 9, 15, 16]),
    additions=st.lists(
        st.tuples(st.integers(min_value=0, max_value=200), _FIELD_NAMES | st.text(min_size=1, max_size=8), _VALUES),
        max_size=3,
    ),
)
def test_the_cheap_check_never_misses_an_unknown_field(example: int, additions: list[tuple[int, str, object]]) -> None:
    # Given a valid example claim with fields (known names, misspelt ones, any text) added to any of its objects
    document = _example(example)
    for position, name, value in additions:
        objects = _objects(document)
        objects[position % len(objects)].setdefault(name, value)
    result = parse_claim_event(json.dumps(document).encode())
    if not isinstance(result, ParsedClaim):
        return  # a known name with a wrong value: a schema failure, whose unknown fields are always searched

    # Then the key count differs from the model's exactly when the full search finds an unknown field,
    expected = find_unknown_fields(document)
    assert (known_field_count(result.claim) != _key_count(document)) == bool(expected)
    # and the parser (which searches only when the counts differ) reports what the full search finds
    assert result.unknown_fields == expected
