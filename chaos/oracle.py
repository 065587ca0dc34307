"""The claim-history oracle: what each history verdict of a run must be, from the committed repartition order.

After a run the repartition topic is read with `read_committed` (in exactly_once the records of aborted
transactions are not there; in at_least_once a claim that stage A processed twice is there twice). Each
partition's records are folded in offset order over an in-memory history, as `tests/rules/test_history_sequences.py`
folds a sequence: every deferred claim is judged against its member's entries so far (`rules.history.judge`), its
verdict is the stage-A verdict it carries plus the history findings (`RuleEngine.with_history`), then the entries
of the claims it removes go (its own claim id among them: a repeated claim id replaces itself) and its own are
recorded. Expiry is left out: the harness' traffic spans far less than history's retention.

Each published verdict that answers a repartition record (same input coordinates and the same `validated_at`,
which stage A stamps per batch) must equal that record's expected verdict, field for field. Records without a
verdict, verdicts answering no record, and (in exactly_once) records with more than one verdict are counted too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.engine import RuleEngine
from rules.history import EXACT_DUPLICATE, judge
from rules.history import RULES as HISTORY_RULES
from schemas.history import DeferredClaim, HistoryLine
from schemas.verdict import ClaimValidated
from worker.topic_reader import TopicReader, TopicRecord
from worker.topic_set import TopicSet

# (input topic, partition, offset, validated_at): which stage-A evaluation a verdict or a deferred claim is of.
VerdictKey = tuple[str, int, int, str]
SAMPLES = 5


@dataclass(frozen=True)
class Expected:
    """One committed repartition record and the verdict the fold gives it."""

    partition: int
    offset: int
    key: VerdictKey
    verdict: ClaimValidated


def key_of(verdict: ClaimValidated) -> VerdictKey | None:
    if verdict.source is None:
        return None
    source = verdict.source
    return (source.topic, source.partition, source.offset, verdict.validated_at.isoformat())


def fold(records: Iterable[TopicRecord], engine: RuleEngine) -> list[Expected]:
    """The expected verdict of every repartition record, each partition in offset order."""
    history: dict[str, list[HistoryLine]] = defaultdict(list)
    expected = []
    for record in sorted(records, key=lambda record: (record.partition, record.offset)):
        deferred = DeferredClaim.model_validate_json(record.value or b"")
        facts = deferred.facts
        entries = history[facts.member_key]
        judgement = judge(facts, entries, engine.policy)
        verdict = engine.with_history(deferred.verdict, judgement)
        entries[:] = [entry for entry in entries if entry.claim_id not in judgement.removed_claims]
        entries.extend(judgement.recorded)
        key = key_of(deferred.verdict)
        if key is None:
            raise ValueError(f"deferred claim at {record.partition}/{record.offset} has no source")
        expected.append(Expected(record.partition, record.offset, key, verdict))
    return expected


def history_rule_ids(verdict: ClaimValidated, profile_codes: frozenset[str]) -> list[str]:
    """The rule ids of the verdict's history findings (rules/history.py), sorted."""
    templates = set(HISTORY_RULES)
    found = []
    for finding in verdict.findings:
        prefix, _, rest = finding.rule_id.partition(".")
        template = "{code}." + rest if prefix in profile_codes else finding.rule_id
        if template in templates:
            found.append(finding.rule_id)
    return sorted(found)


def is_exact_duplicate(rule_id: str) -> bool:
    return rule_id.endswith(EXACT_DUPLICATE.template.removeprefix("{code}"))


@dataclass
class OracleReport:
    """The fold against what was published. `flagged_*`: claim id -> its history rule ids (over its verdicts)."""

    records: int = 0  # committed repartition records
    verdicts: int = 0  # published verdicts answering them
    mismatched: int = 0  # verdicts unlike their record's expected verdict
    unanswered: int = 0  # records without a verdict
    doubled: int = 0  # verdicts beyond the first for one record
    stray: int = 0  # verdicts of deferred claims that answer no committed record
    flagged_expected: dict[str, list[str]] = field(default_factory=dict)
    flagged_published: dict[str, list[str]] = field(default_factory=dict)
    false_exact_duplicates: int = 0  # verdicts with DUPLICATE.EXACT (CARC 18) that the fold does not give
    repeated_claim_ids: int = 0  # claim ids with more than one committed repartition record (resends, replays)
    replayed_inputs: int = 0  # input records with more than one (stage A processed them again after a fault)
    samples: list[str] = field(default_factory=list)

    @property
    def flagged_sets_equal(self) -> bool:
        return self.flagged_expected == self.flagged_published

    def problems(self, *, exactly_once: bool) -> list[str]:
        found = []
        if self.mismatched:
            found.append(f"oracle: {self.mismatched} history verdict(s) unlike the fold's, e.g. {self.samples}")
        if self.false_exact_duplicates:
            found.append(
                f"oracle: {self.false_exact_duplicates} false CARC 18 (an EXACT duplicate the fold does not give)"
            )
        if self.unanswered:
            found.append(f"oracle: {self.unanswered} committed repartition record(s) without a verdict")
        if self.stray:
            found.append(f"oracle: {self.stray} verdict(s) of deferred claims answer no committed repartition record")
        if exactly_once and self.doubled:
            found.append(f"oracle: {self.doubled} repartition record(s) with more than one verdict in exactly_once")
        if not self.flagged_sets_equal:
            differ = sorted(
                claim_id
                for claim_id in {*self.flagged_expected, *self.flagged_published}
                if self.flagged_expected.get(claim_id) != self.flagged_published.get(claim_id)
            )
            sample = {
                c: (self.flagged_expected.get(c, []), self.flagged_published.get(c, [])) for c in differ[:SAMPLES]
            }
            found.append(f"oracle: {len(differ)} claim(s) flagged unlike the fold (expected, published): {sample}")
        return found

    def summary(self) -> dict[str, Any]:
        rules: Counter[str] = Counter(rule for rules in self.flagged_expected.values() for rule in set(rules))
        return {
            "records": self.records,
            "verdicts": self.verdicts,
            "mismatched": self.mismatched,
            "unanswered": self.unanswered,
            "doubled": self.doubled,
            "stray": self.stray,
            "flagged_claims": len(self.flagged_expected),
            "flagged_claims_published": len(self.flagged_published),
            "exact_duplicate_claims": sum(
                1 for rules in self.flagged_expected.values() if any(map(is_exact_duplicate, rules))
            ),
            "false_carc18": self.false_exact_duplicates,
            "repeated_claim_ids": self.repeated_claim_ids,
            "replayed_inputs": self.replayed_inputs,
            "flagged_sets_equal": self.flagged_sets_equal,
            "claims_by_rule": dict(sorted(rules.items())),
        }


def compare(expected: Sequence[Expected], published: Iterable[ClaimValidated], engine: RuleEngine) -> OracleReport:
    """Match each published verdict to the repartition record(s) it answers and compare."""
    profiles = frozenset(engine.policy.profiles)
    report = OracleReport(records=len(expected))
    by_key: dict[VerdictKey, list[Expected]] = defaultdict(list)
    for entry in expected:
        by_key[entry.key].append(entry)
    deferred_claims = Counter(entry.verdict.claim_id for entry in expected)
    report.repeated_claim_ids = sum(1 for count in deferred_claims.values() if count > 1)
    inputs = Counter(entry.key[:3] for entry in expected)
    report.replayed_inputs = sum(1 for count in inputs.values() if count > 1)
    for entry in expected:
        _flag(report.flagged_expected, entry.verdict.claim_id, history_rule_ids(entry.verdict, profiles))
    answers: Counter[tuple[int, int]] = Counter()
    for verdict in published:
        key = key_of(verdict)
        candidates = by_key.get(key) if key is not None else None
        if not candidates:
            if verdict.claim_id in deferred_claims:
                report.stray += 1
                _sample(report, f"stray {verdict.claim_id}")
            continue
        report.verdicts += 1
        rules = history_rule_ids(verdict, profiles)
        _flag(report.flagged_published, verdict.claim_id, rules)
        match = next((entry for entry in candidates if entry.verdict == verdict), None)
        if match is None:
            match = candidates[0]
            report.mismatched += 1
            wanted = history_rule_ids(match.verdict, profiles)
            _sample(
                report,
                f"{verdict.claim_id}: {verdict.outcome.value} {rules}, expected {match.verdict.outcome} {wanted}",
            )
            expected_exact = any(
                is_exact_duplicate(rule) for c in candidates for rule in history_rule_ids(c.verdict, profiles)
            )
            if any(map(is_exact_duplicate, rules)) and not expected_exact:
                report.false_exact_duplicates += 1
        answers[(match.partition, match.offset)] += 1
    report.unanswered = sum(1 for entry in expected if (entry.partition, entry.offset) not in answers)
    report.doubled = sum(count - 1 for count in answers.values() if count > 1)
    return report


def _flag(flagged: dict[str, list[str]], claim_id: str, rules: list[str]) -> None:
    if rules:
        flagged[claim_id] = sorted({*flagged.get(claim_id, []), *rules})


def _sample(report: OracleReport, text: str) -> None:
    if len(report.samples) < SAMPLES:
        report.samples.append(text)


def check(bootstrap: str, topics: TopicSet, engine: RuleEngine, timeout_s: float = 120.0) -> OracleReport:
    """Read the repartition topic and the verdict topics back (read_committed) and compare (see the module)."""
    with TopicReader(bootstrap, [topics.repartition], client_id="chaos-oracle") as reader:
        repartitioned = reader.read_to_end(timeout_s=timeout_s)
    with TopicReader(bootstrap, [topics.passed, topics.failed], client_id="chaos-oracle") as reader:
        verdicts = reader.read_to_end(timeout_s=timeout_s)
    published = [ClaimValidated.model_validate_json(record.value or b"") for record in verdicts]
    return compare(fold(repartitioned, engine), published, engine)
