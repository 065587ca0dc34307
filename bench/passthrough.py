"""The client ceilings: consume the input topic, produce each record unchanged, flush, commit per batch.

    python -m bench.passthrough kafka-python --bootstrap B --topic T --sink S --count N
    python -m bench.passthrough confluent --bootstrap B --topic T --sink S --count N

`kafka-python` builds its clients with the worker's own options (`worker.kafka_io.consumer_options` and
`producer_options`, at_least_once), so it is what the worker would do with no rules at all. `confluent` is the
same loop on confluent-kafka (librdkafka) with the equivalent settings; it is imported only here, from the
bench dependencies (`.cache/bench-deps`), never by the project. Prints one JSON line: records, seconds (first
non-empty poll to the last commit), msgs_per_s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

DEADLINE_S = 900.0


def kafka_python(bootstrap: str, topic: str, sink: str, count: int) -> dict[str, Any]:
    from kafka import KafkaConsumer, KafkaProducer  # noqa: PLC0415
    from kafka.structs import OffsetAndMetadata  # noqa: PLC0415

    from worker.kafka_io import consumer_options, producer_options  # noqa: PLC0415
    from worker.settings import load_settings  # noqa: PLC0415

    settings = load_settings(
        bootstrap_servers=bootstrap, group_id=f"bench-pt-{uuid.uuid4().hex[:8]}", worker_id="bench-passthrough"
    )
    consumer = KafkaConsumer(**consumer_options(settings))
    consumer.subscribe([topic])
    producer = KafkaProducer(**producer_options(settings))
    done, start, end = 0, None, None
    window, cpu = [0.0, 0.0], [0.0, 0.0]
    deadline = time.monotonic() + DEADLINE_S
    max_records = settings.batch_max_records
    try:
        while done < count and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=settings.poll_timeout_ms, max_records=max_records)
            if not batch:
                continue
            if start is None:
                start, window[0], cpu[0] = time.monotonic(), time.time(), time.process_time()
            offsets = {}
            send = producer.send
            for tp, records in batch.items():
                for record in records:
                    send(sink, key=record.key, value=record.value)
                done += len(records)
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
            producer.flush()
            consumer.commit(offsets)
            end, window[1], cpu[1] = time.monotonic(), time.time(), time.process_time()
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)
    return _result(done, start, end, window, cpu)


def confluent(bootstrap: str, topic: str, sink: str, count: int) -> dict[str, Any]:
    import confluent_kafka  # noqa: PLC0415

    from worker.settings import load_settings  # noqa: PLC0415

    settings = load_settings(bootstrap_servers=bootstrap)
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-cf-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_uncommitted",
            "partition.assignment.strategy": "cooperative-sticky",
            "fetch.wait.max.ms": settings.fetch_max_wait_ms,
            "fetch.max.bytes": settings.fetch_max_bytes,
            "max.partition.fetch.bytes": settings.max_partition_fetch_bytes,
            "allow.auto.create.topics": False,
        }
    )
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": settings.producer_linger_ms,
            "batch.size": settings.producer_batch_bytes,
            "message.max.bytes": settings.producer_max_request_bytes,
            "compression.type": settings.producer_compression,
        }
    )
    consumer.subscribe([topic])
    done, start, end = 0, None, None
    window, cpu = [0.0, 0.0], [0.0, 0.0]
    deadline = time.monotonic() + DEADLINE_S
    try:
        while done < count and time.monotonic() < deadline:
            timeout_s = settings.poll_timeout_ms / 1000
            messages = consumer.consume(num_messages=settings.batch_max_records, timeout=timeout_s)
            records = [message for message in messages if message.error() is None]
            if not records:
                continue
            if start is None:
                start, window[0], cpu[0] = time.monotonic(), time.time(), time.process_time()
            produce = producer.produce
            offsets: dict[tuple[str, int], int] = {}
            for message in records:
                while True:
                    try:
                        produce(sink, value=message.value(), key=message.key())
                        break
                    except BufferError:
                        producer.poll(0.01)
                offsets[(message.topic(), message.partition())] = message.offset() + 1
            if producer.flush(60) != 0:
                raise RuntimeError("confluent pass-through: records not acknowledged")
            consumer.commit(
                offsets=[confluent_kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
            )
            done += len(records)
            end, window[1], cpu[1] = time.monotonic(), time.time(), time.process_time()
    finally:
        consumer.close()
    return _result(done, start, end, window, cpu)


def _result(done: int, start: float | None, end: float | None, window: list[float], cpu: list[float]) -> dict[str, Any]:
    seconds = (end - start) if start is not None and end is not None else 0.0
    return {
        "records": done,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(done / seconds, 1) if seconds else 0.0,
        "window": window,  # epoch seconds of the measured span, to match the broker's CPU samples
        "cpu_cores": round((cpu[1] - cpu[0]) / seconds, 2) if seconds else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("client", choices=("kafka-python", "confluent"))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    run = kafka_python if args.client == "kafka-python" else confluent
    print(json.dumps(run(args.bootstrap, args.topic, args.sink, args.count)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
