"""The benchmark harness's pure parts: the claim generator and the report. No timing is asserted here."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from bench.claims import OUTCOME_WEIGHTS, TEMPLATE_OUTCOMES, generate, generate_with_templates, load_templates
from bench.latency import windowed_percentiles
from bench.report import (
    REQUIRED_KEYS,
    cpu_us_per_claim,
    missing_keys,
    percentile,
    ratios,
    render_table,
    target_results,
)
from rules.engine import RuleEngine
from rules.pipeline import evaluate_record
from schemas.parsing import DeadLetter


def test_the_same_seed_generates_the_same_records() -> None:
    assert generate(300, seed=7) == generate(300, seed=7)


def test_another_seed_generates_other_records() -> None:
    assert generate(300, seed=7) != generate(300, seed=8)


def test_every_generated_claim_has_its_own_key_and_event_id() -> None:
    records = generate(2000, seed=3)
    keys = [key for key, _ in records if key is not None]
    event_ids = [json.loads(value)["event_id"] for key, value in records if key is not None]
    assert len(set(keys)) == len(keys)
    assert len(set(event_ids)) == len(event_ids)


def test_the_mix_follows_the_outcome_weights() -> None:
    counts = Counter(template.outcome for template, _, _ in generate_with_templates(20_000, seed=11))
    for outcome, weight in OUTCOME_WEIGHTS.items():
        assert counts[outcome] / 20_000 == pytest.approx(weight, abs=0.02)


def test_the_templates_are_the_example_lines() -> None:
    templates = load_templates()
    assert [template.outcome for template in templates] == list(TEMPLATE_OUTCOMES)


def test_generated_claims_keep_the_outcome_of_their_template(engine: RuleEngine) -> None:
    # Given claims varied from every template (ids, people, charges, dates moved)
    validated_at = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    seen: Counter[str] = Counter()
    for template, _, value in generate_with_templates(1500, seed=5):
        # When each is validated
        result = evaluate_record(value, engine, validated_at=validated_at)
        # Then it has the outcome its example line has
        if isinstance(result, DeadLetter):
            outcome = "dead_letter"
        elif any(finding.rule_id.startswith("SCHEMA.") for finding in result.findings):
            outcome = "schema"
        else:
            outcome = result.outcome.value
        assert outcome == template.outcome, template.index
        seen[outcome] += 1
    assert set(seen) == set(OUTCOME_WEIGHTS)


def _complete_report() -> dict[str, object]:
    report: dict[str, object] = {key: 1.0 for key, kind in REQUIRED_KEYS.items() if kind == (int, float)}
    report.update({"versions": {"python": "3.11"}, "cpu_model": "a CPU", "cpu_count": 2})
    report.update(
        {
            "passthrough_msgs_per_s": 20_000.0,
            "worker_alos_claims_per_s": 17_000.0,
            "worker_eos_claims_per_s": 13_000.0,
            "confluent_passthrough_msgs_per_s": 80_000.0,
        }
    )
    return report


def test_a_complete_report_misses_no_key() -> None:
    assert missing_keys(_complete_report()) == []


@pytest.mark.parametrize("key", sorted(REQUIRED_KEYS))
def test_a_report_without_a_required_key_says_which(key: str) -> None:
    report = _complete_report()
    del report[key]
    assert missing_keys(report) == [key]


def test_ratios_compare_the_worker_with_the_client_ceiling() -> None:
    found = ratios(_complete_report())
    assert found["alos_vs_passthrough"] == 0.85
    assert found["eos_vs_passthrough"] == 0.65
    assert found["passthrough_vs_confluent"] == 0.25


def test_targets_are_judged_against_the_issue_bounds() -> None:
    met = {name: ok for name, _, _, _, ok in target_results(_complete_report())}
    assert met["alos_vs_passthrough"] is True
    assert met["eos_vs_passthrough"] is False


def test_worker_cpu_per_claim_adds_every_process_of_the_worker() -> None:
    # 0.4 core in the main process and 0.6 in the children at 10,000 claims/s: 100 us of CPU per claim.
    assert cpu_us_per_claim([0.4, 0.6], 10_000.0) == 100.0
    assert cpu_us_per_claim([0.4, None], 10_000.0) is None  # a process without two samples: unknown, not less
    assert cpu_us_per_claim([0.4], 0.0) is None


def test_the_cpu_target_is_an_upper_bound() -> None:
    report = _complete_report()
    report["worker_alos_cpu_us_per_claim"] = 49.0
    assert {name: ok for name, _, _, _, ok in target_results(report)}["worker_alos_cpu_us_per_claim"] is True
    report["worker_alos_cpu_us_per_claim"] = 51.0
    assert {name: ok for name, _, _, _, ok in target_results(report)}["worker_alos_cpu_us_per_claim"] is False


def test_the_table_names_every_measurement_and_target() -> None:
    table = render_table(_complete_report())
    for text in (
        "pass-through",
        "at_least_once",
        "exactly_once",
        "p99",
        "RSS",
        "CPU per claim",
        "two workers",
        "confluent",
    ):
        assert text in table
    assert "85% of pass-through" in table


def test_the_latency_timeline_has_percentiles_per_window_of_send_time() -> None:
    # A start-up backlog (slow first window) then a steady state: the windows tell them apart.
    timeline = [(0.5, 900.0), (1.0, 700.0), (4.9, 500.0), (5.0, 20.0), (6.0, 30.0), (12.0, 25.0)]
    windows = windowed_percentiles(timeline, 5.0)
    assert [(w["from_s"], w["to_s"], w["claims"]) for w in windows] == [(0.0, 5.0, 3), (5.0, 10.0, 2), (10.0, 15.0, 1)]
    assert (windows[0]["p50_ms"], windows[0]["p99_ms"]) == (700.0, 900.0)
    assert (windows[1]["p50_ms"], windows[1]["p99_ms"]) == (20.0, 30.0)


def test_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([5.0], 0.99) == 5.0
