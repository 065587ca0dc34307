"""The hostile-input corpus: `corpus/manifest.json`, its committed data files and the recipes of the big ones.

Every entry says what it must end as (`Expectation`); `outcome_of` says what an evaluation result is, in the same
terms, so tests compare the two. Recipes build from the committed template claim (`corpus/valid_claim.json`) and
are deterministic, so the offline and the Kafka tests see the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from schemas.parsing import DeadLetter
from schemas.verdict import Category, ClaimValidated, Outcome, Severity

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
MANIFEST = CORPUS_DIR / "manifest.json"


@dataclass(frozen=True)
class Entry:
    name: str
    expect: str  # "dead_letter:<reason>", "fail:schema" or "verdict"
    covers: str  # the item of issue 8 it stands for
    source: str  # the file name or "recipe <name>"
    _build: Callable[[], bytes]

    def data(self) -> bytes:
        return self._build()


def outcome_of(result: ClaimValidated | DeadLetter) -> str:
    """`result` in the manifest's terms."""
    if isinstance(result, DeadLetter):
        return f"dead_letter:{result.reason.value}"
    # Schema errors make a schema failure; a SCHEMA.UNKNOWN_FIELD warning does not (unknown fields are tolerated).
    schema = any(
        finding.category is Category.SCHEMA and finding.severity is Severity.ERROR for finding in result.findings
    )
    if schema:
        return "fail:schema" if result.outcome is Outcome.FAIL else f"{result.outcome.value}:schema"
    return "verdict"


def outcome_of_output(topic_kind: str, headers: dict[str, bytes], value: bytes) -> str:
    """An output record read back from Kafka, in the manifest's terms (`topic_kind`: pass, fail or dlq)."""
    if topic_kind == "dlq":
        return f"dead_letter:{headers['dlq.reason'].decode()}"
    verdict = json.loads(value)
    if any(finding["category"] == "schema" and finding["severity"] == "error" for finding in verdict["findings"]):
        return "fail:schema" if verdict["outcome"] == "fail" else f"{verdict['outcome']}:schema"
    return "verdict"


@cache
def template() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CORPUS_DIR / "valid_claim.json").read_bytes())
    return document


def _compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# --- recipes --------------------------------------------------------------------------------------------------


def deep_array(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def deep_object(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def deep_inside_claim(levels: int) -> bytes:
    """The template with an unknown field holding `levels` nested arrays (valid JSON, absurd depth)."""
    head = _compact(template())[:-1]
    return head + b',"notes":' + deep_array(levels) + b"}"


def claim_with_lines(count: int, *, pretty: bool = False) -> bytes:
    """The template with `count` minimal lines (compact: under 1 MiB; pretty: over it)."""
    document = json.loads(json.dumps(template()))
    document["lines"] = [
        {"line_number": number, "service_date": "2025-03-14", "procedure_code": "J9353", "units": 1, "charge": "1"}
        for number in range(1, count + 1)
    ]
    return json.dumps(document, indent=2).encode() if pretty else _compact(document)


def long_string(path: str, chars: int, char: str = "x") -> bytes:
    """The template with the string at dotted `path` (list indexes as numbers) made `chars` characters long."""
    document = json.loads(json.dumps(template()))
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    value = char * chars
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return _compact(document)


def padded_claim(total_bytes: int) -> bytes:
    """The template with an unknown field padding it to exactly `total_bytes` bytes."""
    head = _compact(template())[:-1] + b',"padding":"'
    tail = b'"}'
    return head + b"p" * (total_bytes - len(head) - len(tail)) + tail


RECIPES: dict[str, Callable[..., bytes]] = {
    "deep_array": deep_array,
    "deep_object": deep_object,
    "deep_inside_claim": deep_inside_claim,
    "claim_with_lines": claim_with_lines,
    "long_string": long_string,
    "padded_claim": padded_claim,
}


def entries() -> list[Entry]:
    manifest = json.loads(MANIFEST.read_text())
    found = []
    for raw in manifest["entries"]:
        if "file" in raw:
            path = CORPUS_DIR / raw["file"]
            build: Callable[[], bytes] = path.read_bytes
            source = raw["file"]
        else:
            recipe, args = RECIPES[raw["recipe"]], raw.get("args", {})
            build = _bind(recipe, args)
            source = f"recipe {raw['recipe']}"
        found.append(Entry(raw["name"], raw["expect"], raw["covers"], source, build))
    return found


def _bind(recipe: Callable[..., bytes], args: dict[str, Any]) -> Callable[[], bytes]:
    return lambda: recipe(**args)
