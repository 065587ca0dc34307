"""Claims per second for one worker draining a pre-loaded topic, in at_least_once and exactly_once.

    .venv/bin/python bench/worker_drain.py --claims 50000 --partitions 6

Uses the broker in CLAIMS_BOOTSTRAP_SERVERS, or starts a throwaway local one (scripts/kafka-local). The input
is `examples/claims.jsonl` replicated with fresh claim and event ids (same mix of clean, failing, malformed
and unknown-schema lines), pre-loaded once. Each mode runs `claims-worker run` as a subprocess on its own
group and output topics; the rate is records / (end of last batch - start of first batch), from the worker's
own `batch.processed` log lines, so process start-up and group join are not counted. Also measured, for
reference: a raw kafka-python pass-through with the worker's client settings (consume, produce the value
unchanged, flush, commit per batch), the ceiling the worker is compared with. Peak RSS from /proc.
Writes reports/worker-drain.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from worker.demo import DEFAULT_EXAMPLES, REPO_ROOT, create_topics, delete_topics, free_port, kafka_for_demo
from worker.kafka_io import connection_options
from worker.settings import load_settings

REPORT = REPO_ROOT / "reports" / "worker-drain.json"


def generate(examples: Path, count: int) -> list[tuple[bytes | None, bytes]]:
    """`count` records cycling through the example lines, each claim with a unique id."""
    templates = [line.rstrip(b"\r\n") for line in examples.read_bytes().splitlines() if line.strip()]
    records: list[tuple[bytes | None, bytes]] = []
    for index in range(count):
        line = templates[index % len(templates)]
        try:
            document = json.loads(line)
        except ValueError:
            records.append((None, line))
            continue
        if isinstance(document, dict) and isinstance(document.get("claim_id"), str):
            document["claim_id"] = f"{document['claim_id']}-{index}"
            document["event_id"] = f"{document.get('event_id', 'evt')}-{index}"
            records.append((document["claim_id"].encode(), json.dumps(document, separators=(",", ":")).encode()))
        else:
            records.append((None, line))
    return records


def preload(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=10)


def _timestamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_worker(bootstrap: str, topic: str, count: int, delivery: str, extra_env: dict[str, str]) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    outputs = [f"bench.{run_id}.{name}" for name in ("pass", "fail", "dlq")]
    create_topics(bootstrap, outputs, partitions=6)
    log_path = REPO_ROOT / "reports" / f"worker-drain-{delivery}-{run_id}.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLAIMS_")}
    env.update(
        {
            "CLAIMS_BOOTSTRAP_SERVERS": bootstrap,
            "CLAIMS_INPUT_TOPIC": topic,
            "CLAIMS_PASS_TOPIC": outputs[0],
            "CLAIMS_FAIL_TOPIC": outputs[1],
            "CLAIMS_DLQ_TOPIC": outputs[2],
            "CLAIMS_GROUP_ID": f"bench-{run_id}",
            "CLAIMS_WORKER_ID": f"bench-{run_id}",
            "CLAIMS_DELIVERY": delivery,
            "CLAIMS_METRICS_PORT": str(free_port()),
            "CLAIMS_METRICS_HOST": "127.0.0.1",
            "CLAIMS_LOG_FORMAT": "json",
            "CLAIMS_LOG_LEVEL": "info",
            **extra_env,
        }
    )
    batches: list[dict[str, Any]] = []
    peak_rss_kb = 0
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "run"], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 900
            done = 0
            while done < count and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.2)
                batches = [
                    line
                    for line in (json.loads(raw) for raw in log_path.read_text().splitlines() if raw.startswith("{"))
                    if line.get("event") == "batch.processed"
                ]
                done = sum(batch["records"] for batch in batches)
            peak_rss_kb = _peak_rss_kb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=60)
    delete_topics(bootstrap, outputs)
    if not batches:
        raise RuntimeError(f"the worker processed nothing; see {log_path}")
    start = _timestamp(batches[0]["timestamp"]) - batches[0]["duration_ms"] / 1000
    end = _timestamp(batches[-1]["timestamp"])
    processed = sum(batch["records"] for batch in batches)
    return {
        "delivery": delivery,
        "records": processed,
        "seconds": round(end - start, 3),
        "claims_per_s": round(processed / (end - start), 1),
        "batches": len(batches),
        "median_batch_records": statistics.median(batch["records"] for batch in batches),
        "peak_rss_mb": round(peak_rss_kb / 1024, 1),
        "log": str(log_path),
    }


def _peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def passthrough(bootstrap: str, topic: str, count: int) -> dict[str, Any]:
    """Raw kafka-python with the worker's client settings: consume, produce unchanged, flush, commit per batch."""
    settings = load_settings(bootstrap_servers=bootstrap)
    sink = f"bench.{uuid.uuid4().hex[:8]}.passthrough"
    create_topics(bootstrap, [sink], partitions=6)
    common = connection_options(settings)
    consumer = KafkaConsumer(
        topic,
        **common,
        group_id=f"bench-pt-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.batch_max_records,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        fetch_max_bytes=settings.fetch_max_bytes,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
    )
    producer = KafkaProducer(
        **common,
        acks="all",
        linger_ms=settings.producer_linger_ms,
        batch_size=settings.producer_batch_bytes,
        max_request_size=settings.producer_max_request_bytes,
    )
    done = 0
    start = None
    deadline = time.monotonic() + 900
    try:
        while done < count and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=250, max_records=settings.batch_max_records)
            if not batch:
                continue
            if start is None:
                start = time.monotonic()
            for records in batch.values():
                for record in records:
                    producer.send(sink, key=record.key, value=record.value)
                done += len(records)
            producer.flush()
            consumer.commit()
        elapsed = time.monotonic() - (start or time.monotonic())
    finally:
        consumer.close()
        producer.close(timeout=10)
        delete_topics(bootstrap, [sink])
    return {"records": done, "seconds": round(elapsed, 3), "msgs_per_s": round(done / elapsed, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--modes", default="at_least_once,exactly_once")
    parser.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES)
    parser.add_argument("--no-passthrough", action="store_true")
    parser.add_argument("--env", action="append", default=[], help="extra CLAIMS_X=value for the worker")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    records = generate(args.examples, args.claims)
    average_bytes = sum(len(value) for _, value in records) / len(records)
    results: dict[str, Any] = {
        "claims": args.claims,
        "partitions": args.partitions,
        "average_record_bytes": round(average_bytes),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "worker_env": extra_env,
        "runs": [],
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with kafka_for_demo() as (bootstrap, _):
        topic = f"bench.{uuid.uuid4().hex[:8]}.in"
        create_topics(bootstrap, [topic], partitions=args.partitions)
        try:
            print(f"pre-loading {args.claims} claims ({average_bytes:.0f} bytes on average) into {topic}", flush=True)
            preload(bootstrap, topic, records)
            if not args.no_passthrough:
                results["passthrough"] = passthrough(bootstrap, topic, args.claims)
                print(f"pass-through (kafka-python, worker settings): {results['passthrough']}", flush=True)
            for delivery in args.modes.split(","):
                run = run_worker(bootstrap, topic, args.claims, delivery, extra_env)
                results["runs"].append(run)
                print(f"worker {delivery}: {run}", flush=True)
        finally:
            delete_topics(bootstrap, [topic])
    REPORT.write_text(json.dumps(results, indent=2) + "\n")
    ceiling = results.get("passthrough", {}).get("msgs_per_s")
    print(f"\n{'mode':<16}{'claims/s':>10}{'vs pass-through':>18}{'peak RSS MB':>14}")
    for run in results["runs"]:
        ratio = f"{run['claims_per_s'] / ceiling:.0%}" if ceiling else "-"
        print(f"{run['delivery']:<16}{run['claims_per_s']:>10.0f}{ratio:>18}{run['peak_rss_mb']:>14}")
    if ceiling:
        print(f"{'pass-through':<16}{ceiling:>10.0f}")
    print(f"report: {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
