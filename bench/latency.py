"""End-to-end latency: publish at a fixed rate, time each claim from `send()` to its output being readable.

The worker runs as usual; a collector process reads the three output topics (read_committed, so an
exactly_once verdict counts once its transaction commits) and notes when each key arrives; this process
publishes, paced in 5 ms ticks, noting when each key was sent. Publisher and collector use confluent-kafka
(from the bench dependencies) so that the load generator takes as little of the machine's CPU as it can; run
as `python -m bench.latency ...` with `.cache/bench-deps` on the path. Both use the same wall clock. Every record is
keyed (records without a claim id get a synthetic key, which their dead letter keeps), so every output is
matched to its input. The first `WARM_UP_S` seconds are warm-up and not counted.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from bench.report import percentile

# A fresh worker's first seconds are slower (its evaluator child faulting in shared pages, the client sizing its
# fetches): steady state is what "latency at half load" means, so these seconds are published but not counted.
WARM_UP_S = 3.0
# The width of the windows of the latency timeline in the report.
WINDOW_S = 5.0
TICK_S = 0.005


def collect(bootstrap: str, topics: Sequence[str], expected: int, timeout_s: float, pipe: Connection) -> None:
    """Child process: arrival time of each output key; sends {key: seconds} when all came or time ran out."""
    import confluent_kafka  # noqa: PLC0415

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "claims-bench-latency",  # not used for commits: partitions are assigned
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 5,
        }
    )
    metadata = consumer.list_topics(timeout=30)
    consumer.assign(
        [
            confluent_kafka.TopicPartition(topic, partition, confluent_kafka.OFFSET_BEGINNING)
            for topic in topics
            for partition in sorted(metadata.topics[topic].partitions)
        ]
    )
    consumer.consume(num_messages=1, timeout=0.1)
    pipe.send("ready")
    seen: dict[str, float] = {}
    deadline = None
    try:
        while len(seen) < expected:
            messages = consumer.consume(num_messages=5000, timeout=0.02)
            now = time.time()
            for message in messages:
                key = message.key() if message.error() is None else None
                if key is not None:
                    seen.setdefault(key.decode(), now)
            if deadline is None and pipe.poll():
                pipe.recv()  # the publisher is done: from now on wait at most timeout_s
                deadline = time.monotonic() + timeout_s
            if deadline is not None and time.monotonic() > deadline:
                break
    finally:
        consumer.close()
    pipe.send(json.dumps(seen))


def publish_paced(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]], rate_per_s: float
) -> dict[str, float]:
    """Send `records` at `rate_per_s` (in ticks of 5 ms); {key: send time}."""
    import confluent_kafka  # noqa: PLC0415

    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1})
    sent: dict[str, float] = {}
    started = time.monotonic()
    index = 0
    while index < len(records):
        due = min(len(records), int((time.monotonic() - started) * rate_per_s) + 1)
        while index < due:
            key, value = records[index]
            sent[key.decode()] = time.time()
            producer.produce(topic, key=key, value=value)
            index += 1
        producer.poll(0)
        sleep = started + index / rate_per_s - time.monotonic()
        time.sleep(max(sleep, TICK_S))
    if producer.flush(60) != 0:
        raise RuntimeError("latency publisher: records not acknowledged")
    return sent


def measure(
    bootstrap: str,
    input_topic: str,
    output_topics: Sequence[str],
    records: Sequence[tuple[bytes | None, bytes]],
    rate_per_s: float,
) -> dict[str, Any]:
    keyed = [(key if key is not None else f"nokey-{n}".encode(), value) for n, (key, value) in enumerate(records)]
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    collector = context.Process(target=collect, args=(bootstrap, list(output_topics), len(keyed), 30.0, child))
    collector.start()
    try:
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError("the latency collector did not start")
        sent = publish_paced(bootstrap, input_topic, keyed, rate_per_s)
        parent.send("done")
        if not parent.poll(120):
            raise RuntimeError("the latency collector did not report")
        seen: dict[str, float] = json.loads(parent.recv())
    finally:
        collector.join(timeout=30)
        if collector.is_alive():
            collector.terminate()
    first = min(sent.values())
    latencies = sorted((seen[key] - at) * 1000 for key, at in sent.items() if at >= first + WARM_UP_S and key in seen)
    timeline = [(at - first, (seen[key] - at) * 1000) for key, at in sent.items() if key in seen]
    missing = sum(1 for key in sent if key not in seen)
    if not latencies:
        raise RuntimeError("no latency measured")
    return {
        "rate_per_s": round(rate_per_s, 1),
        "published": len(sent),
        "measured": len(latencies),
        "missing": missing,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2),
        # How the latency evolves over the run (warm-up included): shows whether the tail is a start-up backlog.
        "windows": windowed_percentiles(timeline, WINDOW_S),
    }


def windowed_percentiles(timeline: Sequence[tuple[float, float]], width_s: float) -> list[dict[str, float]]:
    """p50/p99 of the latencies (ms) of the claims sent in each `width_s` window, from (seconds since the first
    send, latency ms) pairs; windows without a claim are left out."""
    windows: dict[int, list[float]] = {}
    for offset_s, latency_ms in timeline:
        windows.setdefault(int(offset_s // width_s), []).append(latency_ms)
    result = []
    for index in sorted(windows):
        values = sorted(windows[index])
        result.append(
            {
                "from_s": index * width_s,
                "to_s": (index + 1) * width_s,
                "claims": len(values),
                "p50_ms": round(percentile(values, 0.50), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
            }
        )
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from bench.claims import generate  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--outputs", required=True, help="comma-separated output topics")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    records = generate(args.count, args.seed)
    result = measure(args.bootstrap, args.input, args.outputs.split(","), records, args.rate)
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
