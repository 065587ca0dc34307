"""The engine's fast verdict id equals the contract's `verdict_event_id` (UUID5) for every input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rules.ids import verdict_id
from schemas.verdict import verdict_event_id


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200))
def test_fast_verdict_id_equals_uuid5(source_event_id: str) -> None:
    assert verdict_id(source_event_id) == verdict_event_id(source_event_id)


def test_fast_verdict_id_of_a_digest_id() -> None:
    source = "sha256:" + "ab" * 32

    assert verdict_id(source) == verdict_event_id(source)
