"""Conversion throughput: X12 837P and FHIR R4 Bundles to claim events, one process on one core (no Kafka).

    python -m bench.conversion --claims 10000 --bundles 2000 --repetitions 3

1. A generated 837P file of `--claims` claims (examples/837p-j9353.x12's claim, one subscriber loop per claim,
   one transaction set) converted with pyx12 validating every segment, maps parsed once: claims per CPU-second.
2. pyx12's map loading: the example 837P converted with fresh maps per document (what pyx12's own driver does)
   against maps kept across documents: milliseconds per document each way.
3. `--bundles` copies of examples/fhir-r4-j9353-bundle.json (one Claim each, with Patient, Coverage,
   MedicationAdministration, MedicationRequest and Observation) through fhir.resources' R4B models: claims per
   CPU-second.
Prints one JSON line with every repetition's rates.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.claims import REPO_ROOT
from bench.rules_alone import _pin_to_one_core

EXAMPLE_837P = REPO_ROOT / "examples" / "837p-j9353.x12"
EXAMPLE_FHIR = REPO_ROOT / "examples" / "fhir-r4-j9353-bundle.json"


def x12_file(claims: int) -> bytes:
    """An 837P interchange of `claims` claims: the example's subscriber loop (HL 22 to its last line) repeated."""
    segments = [segment.strip() for segment in EXAMPLE_837P.read_text().split("~") if segment.strip()]
    first_subscriber = next(i for i, segment in enumerate(segments) if segment.startswith("HL*2*"))
    trailer = next(i for i, segment in enumerate(segments) if segment.startswith("SE*"))
    head, subscriber, tail = segments[:first_subscriber], segments[first_subscriber:trailer], segments[trailer:]
    body: list[str] = []
    for number in range(claims):
        for segment in subscriber:
            if segment.startswith("HL*2*"):
                segment = f"HL*{number + 2}*1*22*0"  # noqa: PLW2901 - each subscriber its own HL id
            elif segment.startswith("CLM*"):
                segment = segment.replace("CLM*CLM-EX-0014*", f"CLM*CLM-BENCH-{number:06d}*")  # noqa: PLW2901
            body.append(segment)
    start = next(i for i, segment in enumerate(head) if segment.startswith("ST*"))
    control = tail[0].split("*")[2]
    count = len(head) - start + len(body) + 1
    out = [*head, *body, f"SE*{count}*{control}", *tail[1:]]
    return ("~\n".join(out) + "~\n").encode()


def _cpu_rate(count: int, action: Callable[[], object]) -> tuple[float, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    action()
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - started
    return round(count / cpu, 1), round(count / wall, 1)


def measure(claims: int, bundles: int, repetitions: int) -> dict[str, Any]:
    from adapters.convert import InputFormat, convert_bytes  # noqa: PLC0415 - imports are part of no figure
    from adapters.x12.maps import X12Maps  # noqa: PLC0415

    big = x12_file(claims)
    maps = X12Maps()
    warm = convert_bytes(EXAMPLE_837P.read_bytes(), InputFormat.X12, maps=maps)  # parse the maps once
    if warm.x12_report is None or not warm.x12_report.valid:
        raise RuntimeError("examples/837p-j9353.x12 no longer meets the implementation guide")

    def convert_big() -> None:
        conversion = convert_bytes(big, InputFormat.X12, maps=maps)
        if len(conversion.records) != claims:
            raise RuntimeError(f"converted {len(conversion.records)} of {claims} claims")

    x12_rates = [_cpu_rate(claims, convert_big) for _ in range(repetitions)]

    small = EXAMPLE_837P.read_bytes()
    documents = 20
    fresh = [_cpu_rate(documents, lambda: [convert_bytes(small, InputFormat.X12, maps=X12Maps()) for _ in range(documents)]) for _ in range(repetitions)]  # fmt: skip  # noqa: E501
    cached = [_cpu_rate(documents, lambda: [convert_bytes(small, InputFormat.X12, maps=maps) for _ in range(documents)]) for _ in range(repetitions)]  # fmt: skip  # noqa: E501

    bundle = EXAMPLE_FHIR.read_bytes()
    convert_bytes(bundle, InputFormat.FHIR)  # import fhir.resources once

    def convert_bundles() -> None:
        for _ in range(bundles):
            convert_bytes(bundle, InputFormat.FHIR)

    fhir_rates = [_cpu_rate(bundles, convert_bundles) for _ in range(repetitions)]
    return {
        "x12_claims": claims,
        "x12_file_bytes": len(big),
        "x12_claims_per_s": [cpu for cpu, _ in x12_rates],  # per CPU-second
        "x12_wall_claims_per_s": [wall for _, wall in x12_rates],
        "x12_ms_per_document_fresh_maps": [round(1000 / cpu, 2) for cpu, _ in fresh],
        "x12_ms_per_document_cached_maps": [round(1000 / cpu, 2) for cpu, _ in cached],
        "fhir_bundles": bundles,
        "fhir_claims_per_s": [cpu for cpu, _ in fhir_rates],
        "fhir_wall_claims_per_s": [wall for _, wall in fhir_rates],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--bundles", type=int, default=2_000)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args(argv)
    core = _pin_to_one_core()
    result = {"core": core, **measure(args.claims, args.bundles, max(1, args.repetitions))}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
