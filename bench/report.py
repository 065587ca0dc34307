"""The benchmark report: its required keys, the medians, and the table with the ratios the issue asks for."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# The keys issue 7 requires in reports/bench.json, with their types.
REQUIRED_KEYS: Mapping[str, type | tuple[type, ...]] = {
    "rules_claims_per_s": (int, float),
    "conversion_x12_claims_per_s": (int, float),
    "conversion_fhir_claims_per_s": (int, float),
    "passthrough_msgs_per_s": (int, float),
    "worker_alos_claims_per_s": (int, float),
    "worker_eos_claims_per_s": (int, float),
    "latency_p50_ms": (int, float),
    "latency_p95_ms": (int, float),
    "latency_p99_ms": (int, float),
    "worker_peak_rss_mb": (int, float),
    "worker_alos_cpu_us_per_claim": (int, float),
    "two_workers_speedup": (int, float),
    "worker_history_alos_claims_per_s": (int, float),
    "worker_history_eos_claims_per_s": (int, float),
    "history_restore_records_per_s": (int, float),
    "history_store_bytes_per_100k_lines": (int, float),
    "history_1m_entries_peak_rss_mb": (int, float),
    "confluent_passthrough_msgs_per_s": (int, float),
    "versions": dict,
    "cpu_model": str,
    "cpu_count": int,
}

# Issue 7's targets: (key or ratio name, comparison, bound).
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("alos_vs_passthrough", ">=", 0.80),
    ("eos_vs_passthrough", ">=", 0.70),
    ("rules_claims_per_s", ">=", 30_000),
    ("latency_p99_ms", "<=", 100),
    ("worker_peak_rss_mb", "<=", 150),
    # Issue 15: the CPU of all the worker's processes per claim (at_least_once drain).
    ("worker_alos_cpu_us_per_claim", "<=", 50),
    # Issue 12: the stateful worker against the stateless one, restores, memory with a million entries.
    ("history_alos_vs_stateless", ">=", 0.80),
    ("history_eos_vs_stateless", ">=", 0.80),
    ("history_restore_records_per_s", ">=", 50_000),
    ("history_1m_entries_peak_rss_mb", "<=", 200),
)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("no repetitions")
    return float(statistics.median(values))


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (`fraction` in 0..1)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, round(fraction * len(sorted_values) + 0.5 - 1e-9))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def cpu_us_per_claim(cores: Sequence[float | None], claims_per_s: float) -> float | None:
    """CPU microseconds per claim of processes that used `cores` together while handling `claims_per_s`."""
    if claims_per_s <= 0 or any(value is None for value in cores):
        return None
    return round(sum(value for value in cores if value is not None) / claims_per_s * 1e6, 1)


def ratios(report: Mapping[str, Any]) -> dict[str, float | None]:
    """worker / client ceiling, exactly_once / at_least_once, two workers / one, and the librdkafka reference."""

    def ratio(numerator: str, denominator: str) -> float | None:
        top, bottom = report.get(numerator), report.get(denominator)
        if not isinstance(top, int | float) or not isinstance(bottom, int | float) or bottom <= 0:
            return None
        return round(top / bottom, 3)

    return {
        "alos_vs_passthrough": ratio("worker_alos_claims_per_s", "passthrough_msgs_per_s"),
        "eos_vs_passthrough": ratio("worker_eos_claims_per_s", "passthrough_msgs_per_s"),
        "eos_vs_alos": ratio("worker_eos_claims_per_s", "worker_alos_claims_per_s"),
        "two_workers_vs_one": report.get("two_workers_speedup"),
        "passthrough_vs_confluent": ratio("passthrough_msgs_per_s", "confluent_passthrough_msgs_per_s"),
        "history_alos_vs_stateless": ratio("worker_history_alos_claims_per_s", "worker_alos_claims_per_s"),
        "history_eos_vs_stateless": ratio("worker_history_eos_claims_per_s", "worker_eos_claims_per_s"),
    }


def missing_keys(report: Mapping[str, Any]) -> list[str]:
    """Required keys that are absent or of the wrong type (empty when the report is complete)."""
    problems = []
    for key, kind in REQUIRED_KEYS.items():
        value = report.get(key)
        if value is None or isinstance(value, bool) or not isinstance(value, kind):
            problems.append(key)
    return problems


def target_results(report: Mapping[str, Any]) -> list[tuple[str, str, float, float | None, bool | None]]:
    """(name, comparison, bound, measured, met) per target; met is None when the figure is missing."""
    values = {**report, **ratios(report)}
    results = []
    for name, comparison, bound in TARGETS:
        measured = values.get(name)
        if not isinstance(measured, int | float):
            results.append((name, comparison, bound, None, None))
            continue
        met = measured >= bound if comparison == ">=" else measured <= bound
        results.append((name, comparison, bound, float(measured), met))
    return results


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:.2f}{unit}"
    return f"{value:,.0f}{unit}"


def render_table(report: Mapping[str, Any]) -> str:
    """The Markdown table printed at the end of a run (and pasted into the README)."""
    r = ratios(report)

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    rows = [
        ("rules alone (one core, bytes in, verdict bytes out)", _fmt(report.get("rules_claims_per_s")), "claims/s", ""),
        (
            "conversion: 10,000-claim X12 837P file (pyx12, one core)",
            _fmt(report.get("conversion_x12_claims_per_s")),
            "claims/s",
            "",
        ),
        (
            "conversion: FHIR R4 Bundles, one Claim each (fhir.resources R4B, one core)",
            _fmt(report.get("conversion_fhir_claims_per_s")),
            "claims/s",
            "",
        ),
        (
            "client ceiling: kafka-python pass-through",
            _fmt(report.get("passthrough_msgs_per_s")),
            "msgs/s",
            "100%",
        ),
        (
            "worker, at_least_once",
            _fmt(report.get("worker_alos_claims_per_s")),
            "claims/s",
            f"{pct(r['alos_vs_passthrough'])} of pass-through",
        ),
        (
            "worker, exactly_once",
            _fmt(report.get("worker_eos_claims_per_s")),
            "claims/s",
            f"{pct(r['eos_vs_passthrough'])} of pass-through, {pct(r['eos_vs_alos'])} of at_least_once",
        ),
        (
            "latency at half load, p50 / p95 / p99",
            " / ".join(_fmt(report.get(key)) for key in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")),
            "ms",
            f"at {_fmt(report.get('latency_rate_per_s'))} claims/s",
        ),
        (
            "worker peak RSS, its processes together (at_least_once drain)",
            _fmt(report.get("worker_peak_rss_mb")),
            "MB",
            f"main process {_fmt(report.get('worker_main_process_peak_rss_mb'))} MB, "
            f"PSS {_fmt(report.get('worker_peak_pss_mb'))} MB, "
            f"per-process RSS summed {_fmt(report.get('worker_sum_of_peak_rss_mb'))} MB",
        ),
        (
            "worker CPU per claim, all its processes (at_least_once / exactly_once drain)",
            " / ".join(
                _fmt(report.get(key)) for key in ("worker_alos_cpu_us_per_claim", "worker_eos_cpu_us_per_claim")
            ),
            "us",
            "main process and evaluator children, over the batch window",
        ),
        (
            "stateful worker (claim history), at_least_once",
            _fmt(report.get("worker_history_alos_claims_per_s")),
            "claims/s",
            f"{pct(r['history_alos_vs_stateless'])} of the stateless worker",
        ),
        (
            "stateful worker (claim history), exactly_once",
            _fmt(report.get("worker_history_eos_claims_per_s")),
            "claims/s",
            f"{pct(r['history_eos_vs_stateless'])} of the stateless worker",
        ),
        (
            "claim history: restore from the changelog",
            _fmt(report.get("history_restore_records_per_s")),
            "records/s",
            f"{_fmt((report.get('history_restore') or {}).get('restored_records'))} records",
        ),
        (
            "claim history: store size per 100,000 claim lines",
            _fmt((report.get("history_store_bytes_per_100k_lines") or 0) / 1e6 or None),
            "MB",
            "RocksDB files after the restore and a drain",
        ),
        (
            "claim history: worker peak RSS with 1,000,000 entries",
            _fmt(report.get("history_1m_entries_peak_rss_mb")),
            "MB",
            f"{_fmt((report.get('history_restore') or {}).get('peak_rss_mb_after_restore'))} MB after the restore",
        ),
        (
            "two workers, one group",
            _fmt(report.get("two_workers_claims_per_s")),
            "claims/s",
            f"{_fmt(report.get('two_workers_speedup'))}x one worker",
        ),
        (
            "reference: confluent-kafka pass-through",
            _fmt(report.get("confluent_passthrough_msgs_per_s")),
            "msgs/s",
            f"kafka-python at {pct(r['passthrough_vs_confluent'])} of it",
        ),
    ]
    lines = ["| measurement | median | unit | ratio |", "|---|---:|---|---|"]
    lines += [f"| {name} | {value} | {unit} | {note} |" for name, value, unit, note in rows]
    targets = []
    for name, comparison, bound, measured, met in target_results(report):
        shown = "-" if measured is None else (f"{measured:.0%}" if bound < 1 else _fmt(measured))
        bound_text = f"{bound:.0%}" if bound < 1 else _fmt(bound)
        verdict = "not measured" if met is None else ("met" if met else "NOT met")
        targets.append(f"- {name} {comparison} {bound_text}: {shown} ({verdict})")
    return "\n".join(lines) + "\n\nTargets (issues 7, 12 and 15):\n" + "\n".join(targets) + "\n"
