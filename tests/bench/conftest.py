"""The real rule engine, once per session (loading it reads every policy file and the ICD-10-CM code set)."""

from __future__ import annotations

import pytest

from rules.engine import RuleEngine, load_engine


@pytest.fixture(scope="session")
def engine() -> RuleEngine:
    return load_engine()
