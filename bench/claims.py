"""Generated claims for the benchmarks: the mix of `examples/claims.jsonl`, varied, from a fixed seed.

Every generated record is one of the 19 example lines (the templates) with its identifiers and personal values
replaced and its dates moved, so each keeps its template's outcome (a test checks it) while no two records are
the same bytes: unique claim and event ids, member ids, birth dates, charges, dates shifted by up to
`MAX_SHIFT_DAYS` (all dates of a claim by the same amount, so filing limits and dose intervals hold).

The mix is weighted per outcome, like a claims feed before scrubbing (most claims clean, a third faulty, a few
out of scope, rare unreadable input); `OUTCOME_WEIGHTS` says how, and the report records the mix it measured.
Keys are the claim ids, as `claims-worker publish` keys them; records without a claim id have no key.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples" / "claims.jsonl"
DEFAULT_SEED = 20261127
MAX_SHIFT_DAYS = 150

# Expected outcome of each example line (examples/README.md); "schema" is a fail verdict with schema findings.
TEMPLATE_OUTCOMES: tuple[str, ...] = (
    "pass", "fail", "pass", "fail", "fail", "fail", "pass", "fail", "fail", "not_applicable",
    "not_applicable", "fail", "fail", "fail", "pass", "pass", "schema", "dead_letter", "dead_letter",
)  # fmt: skip

# Share of each outcome in the generated stream; split evenly among the templates of that outcome.
OUTCOME_WEIGHTS: Mapping[str, float] = {
    "pass": 0.55,
    "fail": 0.30,
    "not_applicable": 0.10,
    "schema": 0.03,
    "dead_letter": 0.02,
}

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
# Fields holding dates of the claim's story (moved together); birth dates are drawn instead.
_MOVED_DATE_KEYS = frozenset({"submitted_on", "service_date", "valid_from", "valid_to", "started_at", "ended_at"})
# Valid NPIs (Luhn check digit with the 80840 prefix), so a varied provider stays a well-formed one.
_NPIS = ("1234567893", "1987654328", "1003000126", "1497758544", "1215930367", "1568495216")


@dataclass(frozen=True, slots=True)
class Template:
    index: int
    outcome: str
    raw: bytes
    document: dict[str, Any] | None  # None: not a JSON object (kept byte for byte)


def load_templates(path: Path = EXAMPLES) -> list[Template]:
    lines = [line.rstrip(b"\r\n") for line in path.read_bytes().splitlines() if line.strip()]
    if len(lines) != len(TEMPLATE_OUTCOMES):
        raise ValueError(f"{path} has {len(lines)} claims; TEMPLATE_OUTCOMES lists {len(TEMPLATE_OUTCOMES)}")
    templates = []
    for index, (raw, outcome) in enumerate(zip(lines, TEMPLATE_OUTCOMES, strict=True)):
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        templates.append(Template(index, outcome, raw, document if isinstance(document, dict) else None))
    return templates


def template_weights(templates: Sequence[Template], weights: Mapping[str, float] = OUTCOME_WEIGHTS) -> list[float]:
    counts: dict[str, int] = {}
    for template in templates:
        counts[template.outcome] = counts.get(template.outcome, 0) + 1
    return [weights[template.outcome] / counts[template.outcome] for template in templates]


def generate(
    count: int, seed: int = DEFAULT_SEED, *, templates: Sequence[Template] | None = None, members: int | None = None
) -> list[tuple[bytes | None, bytes]]:
    """`count` (key, value) records, the same for the same seed and templates.

    `members`: member ids drawn from a pool of this many (claim history then meets each member several times);
    default: practically every claim its own member.
    """
    chosen = list(templates) if templates is not None else load_templates()
    rng = random.Random(seed)
    picks = rng.choices(chosen, weights=template_weights(chosen), k=count)
    return [vary(template, number, rng, members=members) for number, template in enumerate(picks)]


def generate_with_templates(count: int, seed: int = DEFAULT_SEED) -> list[tuple[Template, bytes | None, bytes]]:
    """Like `generate`, with the template each record came from (for the mix check)."""
    chosen = load_templates()
    rng = random.Random(seed)
    picks = rng.choices(chosen, weights=template_weights(chosen), k=count)
    out = []
    for number, template in enumerate(picks):
        key, value = vary(template, number, rng)
        out.append((template, key, value))
    return out


def vary(
    template: Template, number: int, rng: random.Random, *, members: int | None = None
) -> tuple[bytes | None, bytes]:
    """One record from `template`: ids made unique with `number`, personal values and dates drawn from `rng`."""
    if template.document is None:
        return None, template.raw
    document = json.loads(template.raw)  # a fresh copy to change
    suffix = f"{number:08d}"
    claim_id = document.get("claim_id")
    if isinstance(claim_id, str):
        document["claim_id"] = f"{claim_id[:40]}-{suffix}"
    if isinstance(document.get("event_id"), str):
        document["event_id"] = f"evt-{rng.getrandbits(64):016x}-{suffix}"
    patient = document.get("patient")
    if isinstance(patient, dict):
        patient["member_id"] = member_id(rng.randrange(members or 10**9))
        if isinstance(patient.get("birth_date"), str) and _DATE.match(patient["birth_date"]):
            born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 50))
            patient["birth_date"] = born.isoformat()
    for role in ("billing_provider", "rendering_provider"):
        provider = document.get(role)
        if isinstance(provider, dict) and isinstance(provider.get("npi"), str):
            provider["npi"] = rng.choice(_NPIS)
    shift = dt.timedelta(days=-rng.randrange(MAX_SHIFT_DAYS + 1))
    _move_dates(document, shift)
    for line in document.get("lines") or []:
        if isinstance(line, dict) and isinstance(line.get("charge"), str):
            line["charge"] = _vary_charge(line["charge"], rng)
    value = json.dumps(document, separators=(",", ":")).encode()
    key = document["claim_id"].encode() if isinstance(document.get("claim_id"), str) else None
    return key, value


def _move_dates(node: Any, shift: dt.timedelta) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _MOVED_DATE_KEYS and isinstance(value, str):
                node[key] = _moved(value, shift)
            else:
                _move_dates(value, shift)
    elif isinstance(node, list):
        for item in node:
            _move_dates(item, shift)


def _moved(text: str, shift: dt.timedelta) -> str:
    try:
        if _DATE.match(text):
            return (dt.date.fromisoformat(text) + shift).isoformat()
        if _DATETIME.match(text):
            return (dt.datetime.fromisoformat(text) + shift).isoformat()
    except ValueError:
        pass  # e.g. the schema-failure template's 30 February: stays as it is
    return text


def _vary_charge(text: str, rng: random.Random) -> str:
    try:
        cents = round(float(text) * 100)
    except ValueError:
        return text
    return f"{max(cents + rng.randrange(-500, 501), 0) / 100:.2f}"


def member_id(number: int) -> str:
    """The generated member id number `number` (bench/history.py keys synthetic history entries by these too)."""
    return f"MBR-{number:09d}"


def average_bytes(records: Sequence[tuple[bytes | None, bytes]]) -> float:
    return sum(len(value) for _, value in records) / max(len(records), 1)
