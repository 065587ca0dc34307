"""Rules alone: bytes in, verdict bytes out, in one process pinned to one core (no Kafka).

    python -m bench.rules_alone --count 50000 --seed 20261127 --repetitions 5

Runs what the worker runs per record (`worker.evaluator.evaluate_claim_bytes` with the record's Kafka
coordinates: parsing, the rules and the verdict's JSON serialisation, behind the worker's one guard) over the
generated claims and over the 19 example lines as they are (equal weights, the authors' first measurement).
Rates are claims per CPU-second of this process (see `measure`). Prints one JSON line with the rates of each
repetition.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bench.claims import DEFAULT_SEED, generate, load_templates


def _pin_to_one_core() -> int | None:
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
    except (AttributeError, OSError):
        return None
    return cpus[-1]


def measure(values: Sequence[bytes], repetitions: int) -> tuple[list[float], list[float], Counter[str]]:
    """(claims per CPU-second, claims per wall-clock second) of each repetition, and the outcome counts.

    The CPU-time rate is the headline: on a shared machine the wall-clock rate also counts the time other
    processes had the core; on an idle core the two agree.
    """
    from rules.engine import load_engine  # noqa: PLC0415
    from schemas.parsing import DEFAULT_MAX_BYTES  # noqa: PLC0415
    from schemas.verdict import SourceRecord  # noqa: PLC0415
    from worker.evaluator import Verdict, evaluate_claim_bytes  # noqa: PLC0415

    engine = load_engine()
    gc.freeze()  # as `claims-worker validate` and the worker do once the engine is loaded
    rates: list[float] = []
    wall_rates: list[float] = []
    outcomes: Counter[str] = Counter()
    for repetition in range(repetitions):
        validated_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        cpu_started = time.process_time()
        for offset, raw in enumerate(values):
            source = SourceRecord(topic="bench", partition=0, offset=offset)
            evaluate_claim_bytes(engine, raw, validated_at=validated_at, max_bytes=DEFAULT_MAX_BYTES, source=source)
        elapsed = time.perf_counter() - started
        rates.append(round(len(values) / (time.process_time() - cpu_started), 1))
        wall_rates.append(round(len(values) / elapsed, 1))
        if repetition == 0:
            for raw in values:
                result = evaluate_claim_bytes(engine, raw, validated_at=validated_at, max_bytes=DEFAULT_MAX_BYTES)
                outcomes[result.outcome.value if isinstance(result, Verdict) else "dead_letter"] += 1
    return rates, wall_rates, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args(argv)
    core = _pin_to_one_core()
    generated = [value for _, value in generate(args.count, args.seed)]
    templates = [template.raw for template in load_templates()]
    examples = (templates * (args.count // len(templates) + 1))[: args.count]
    gc.collect()
    rates, wall_rates, outcomes = measure(generated, args.repetitions)
    example_rates, _, _ = measure(examples, args.repetitions)
    result: dict[str, Any] = {
        "core": core,
        "claims": args.count,
        "generated_rates": rates,  # claims per CPU-second
        "generated_wall_rates": wall_rates,
        "examples_rates": example_rates,
        "generated_outcomes": dict(outcomes),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
