"""Peak RSS of one interpreter that evaluates the whole hostile-input corpus `--rounds` times (offline path).

    .venv/bin/python -m tests.reliability.measure_rss --rounds 5

Prints one JSON line: peak RSS (VmHWM) after loading the rule engine and after the corpus, and the record
count; also merges it into `reports/hostile-input.json` (git-ignored) under "offline".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from rules.engine import load_engine
from rules.pipeline import evaluate_record
from tests.reliability.hostile_corpus import entries

REPORT = Path(__file__).resolve().parents[2] / "reports" / "hostile-input.json"


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def record(section: str, figures: dict[str, object]) -> None:
    """Merge `figures` into the report under `section`."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    report[section] = {**figures, "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    REPORT.write_text(json.dumps(report, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = load_engine()
    baseline = peak_rss_mb()
    corpus = entries()
    validated_at = dt.datetime.now(dt.UTC)
    records = 0
    for _ in range(args.rounds):
        for entry in corpus:
            evaluate_record(entry.data(), engine, validated_at=validated_at)
            records += 1
    figures = {
        "records": records,
        "entries": len(corpus),
        "largest_entry_bytes": max(len(entry.data()) for entry in corpus),
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    record("offline_corpus", figures)
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
