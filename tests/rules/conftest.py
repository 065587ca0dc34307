"""Fixtures of the rules tests: one engine for the session (loading the ICD-10-CM code set takes seconds)."""

from __future__ import annotations

import datetime as dt

import pytest

from rules.engine import RuleEngine, load_engine

# A fixed validation time: every verdict in these tests is reproducible, whatever the date of the run.
VALIDATED_AT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def engine() -> RuleEngine:
    return load_engine()
