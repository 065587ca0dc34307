"""Any input gives claim records or one coded ConversionError, never another exception (Hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.convert import InputFormat, convert_bytes
from adapters.errors import ConversionError
from adapters.x12.maps import X12Maps
from tests.adapters.conftest import EXAMPLE_837I, EXAMPLE_837P, EXAMPLE_FHIR

_MAPS = X12Maps()  # one per module: parsing the maps for every example would make the test minutes long
_X12 = [EXAMPLE_837P.read_bytes(), EXAMPLE_837I.read_bytes()]


@st.composite
def damaged_x12(draw: st.DrawFn) -> bytes:
    """An example interchange with a few bytes deleted, replaced or inserted (separators included)."""
    data = bytearray(draw(st.sampled_from(_X12)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(data) - 1))
        action = draw(st.sampled_from(["delete", "replace", "insert"]))
        byte = draw(st.sampled_from([*b"*:~^\n\x00 AZ09", 0xFF]))
        if action == "delete":
            del data[position]
        elif action == "replace":
            data[position] = byte
        else:
            data.insert(position, byte)
    return bytes(data)


@pytest.mark.timeout(600)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=damaged_x12())
def test_a_damaged_interchange_converts_or_fails_with_a_code(data: bytes) -> None:
    try:
        conversion = convert_bytes(data, InputFormat.X12, maps=_MAPS)
    except ConversionError:
        return  # a coded failure is an accepted outcome
    assert conversion.x12_report is not None
    if not conversion.x12_report.valid:
        assert conversion.records == ()


@pytest.mark.timeout(600)
@settings(max_examples=150, deadline=None)
@given(
    path=st.lists(
        st.sampled_from(["entry", 0, 1, 6, "resource", "item", "dosage", "dose", "value", "code"]), max_size=4
    ),
    value=st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2), st.just({})),
)
def test_a_damaged_bundle_converts_or_fails_with_a_code(path: list[str | int], value: object) -> None:
    document = json.loads(EXAMPLE_FHIR.read_text())
    target: object = document
    for part in path[:-1]:
        if (isinstance(target, dict) and isinstance(part, str) and part in target) or (
            isinstance(target, list) and isinstance(part, int) and part < len(target)
        ):
            target = target[part]
    if (path and isinstance(target, dict) and isinstance(path[-1], str)) or (
        path and isinstance(target, list) and isinstance(path[-1], int) and path[-1] < len(target)
    ):
        target[path[-1]] = value

    try:
        conversion = convert_bytes(json.dumps(document).encode(), InputFormat.FHIR)
    except ConversionError:
        return  # a coded failure is an accepted outcome
    assert all(record.value.startswith(b"{") for record in conversion.records)
