"""Every entry of the hostile-input corpus ends as its expected outcome on the offline path (`evaluate_record`).

The offline path is what the worker runs per record (and `claims-worker validate` per line), minus Kafka. A
verdict must also serialize (the worker publishes it as JSON) and carry an id a Kafka key can hold.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rules.engine import RuleEngine, load_engine
from rules.pipeline import evaluate_record
from schemas.parsing import DeadLetter
from schemas.verdict import ClaimValidated
from tests.reliability.hostile_corpus import CORPUS_DIR, MANIFEST, Entry, entries, outcome_of

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = Path(__file__).resolve().parents[2]
VALIDATED_AT = dt.datetime(2025, 4, 1, 12, 0, tzinfo=dt.UTC)
# The items of issue 8's hostile-input list; each must be covered by at least one corpus entry.
ISSUE_ITEMS = (
    "invalid UTF-8",
    "truncated JSON",
    "JSON that is an array",
    "JSON that is a string",
    "JSON that is a number",
    "JSON that is null",
    "duplicate keys",
    "NaN",
    "Infinity",
    "numbers with 10,000 digits",
    "deep nesting (100,000 levels)",
    "a claim with 10,000 lines",
    "strings of 1 MB",
    "NUL bytes",
    "unicode look-alikes in codes",
    "values over the byte limit",
    "wrong schema versions",
    "missing claim ids",
)
CORPUS = entries()


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return load_engine()


def test_every_item_of_the_issue_has_corpus_entries() -> None:
    covered = {entry.covers for entry in CORPUS}

    missing = [item for item in ISSUE_ITEMS if not any(cover.startswith(item) for cover in covered)]

    assert missing == []


def test_the_corpus_commits_no_file_over_1_mb_and_no_file_the_manifest_does_not_name() -> None:
    files_named = {entry.source for entry in CORPUS if not entry.source.startswith("recipe ")}
    named = files_named | {"manifest.json", json.loads(MANIFEST.read_text())["template"]}
    files = {path.name: path.stat().st_size for path in CORPUS_DIR.iterdir()}

    assert {name for name, size in files.items() if size > 1_000_000} == set()
    assert set(files) == named


def test_recipes_are_deterministic() -> None:
    recipes = [entry for entry in CORPUS if entry.source.startswith("recipe")]

    assert recipes
    for entry in recipes:
        assert entry.data() == entry.data(), entry.name


@pytest.mark.parametrize("entry", CORPUS, ids=[entry.name for entry in CORPUS])
def test_each_hostile_input_ends_as_its_expected_outcome(engine: RuleEngine, entry: Entry) -> None:
    result = evaluate_record(entry.data(), engine, validated_at=VALIDATED_AT)

    assert outcome_of(result) == entry.expect
    if isinstance(result, ClaimValidated):
        published = json.loads(ClaimValidated.__pydantic_serializer__.to_json(result))
        assert published["claim_id"] == result.claim_id
        assert 1 <= len(result.claim_id.encode()) <= 256
    else:
        assert isinstance(result, DeadLetter)
        assert len(result.error) <= 300


def test_memory_stays_bounded_while_processing_the_corpus_repeatedly() -> None:
    # In a fresh interpreter, so that the figure is the corpus' alone: every entry five times over.
    result = subprocess.run(
        [sys.executable, "-m", "tests.reliability.measure_rss", "--rounds", "5"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])

    # The largest entry is 10 MB; a parser that copied it per nesting level or per line would blow far past this.
    assert measured["peak_rss_mb"] < 1024, measured
    assert measured["records"] == 5 * len(CORPUS)
