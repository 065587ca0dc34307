"""`claims-worker publish FILE`: send JSONL claim events to the input topic, keyed by claim id.

Each non-blank line is sent unchanged (bytes as read), so malformed lines reach the worker as they are and
end on the dead-letter topic; the key is the line's `claim_id` when it is a JSON object with a string one.
`-` reads standard input. Prints how many records were published.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from worker.exit_codes import ExitCode
from worker.kafka_io import KafkaConfigError, KafkaIOError, classify, plain_producer
from worker.settings import ConfigError, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="JSONL file of claim.submitted events ('-': stdin)")
    parser.add_argument("--topic", help="target topic (default: CLAIMS_INPUT_TOPIC)")
    parser.add_argument("--bootstrap-servers", help="overrides CLAIMS_BOOTSTRAP_SERVERS")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="wait for acknowledgements (default: 60)")


def claim_key(line: bytes) -> bytes | None:
    """The record key for one JSONL line: its `claim_id` as UTF-8, or None when there is none."""
    try:
        document: Any = json.loads(line)
    except (ValueError, RecursionError):
        return None
    claim_id = document.get("claim_id") if isinstance(document, dict) else None
    return claim_id.encode() if isinstance(claim_id, str) and claim_id else None


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Non-blank lines without their line ending, as bytes (unchanged otherwise)."""
    for line in stream:
        stripped = line.rstrip(b"\r\n")
        if stripped.strip():
            yield stripped


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(bootstrap_servers=args.bootstrap_servers)
    except ConfigError as error:
        print(f"claims-worker publish: {error}", file=sys.stderr)
        return ExitCode.CONFIG
    topic = args.topic or settings.input_topic
    try:
        producer = plain_producer(settings, client_id=f"claims-worker-publish.{settings.worker_id}")
    except KafkaIOError as error:
        print(f"claims-worker publish: cannot reach Kafka at {settings.bootstrap_servers}: {error}", file=sys.stderr)
        return ExitCode.CONFIG if isinstance(error, KafkaConfigError) else ExitCode.BROKER_OUTAGE
    futures = []
    try:
        if args.file == "-":
            lines = list(read_lines(sys.stdin.buffer))
        else:
            with Path(args.file).open("rb") as stream:
                lines = list(read_lines(stream))
        for line in lines:
            futures.append(producer.send(topic, key=claim_key(line), value=line))
        producer.flush(timeout=args.timeout_s)
        failed = [future for future in futures if future.failed()]
        if failed:
            print(
                f"claims-worker publish: {len(failed)} of {len(futures)} records failed: "
                f"{classify(failed[0].exception)}",
                file=sys.stderr,
            )
            return ExitCode.FAILURE
    except OSError as error:
        print(f"claims-worker publish: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return ExitCode.USAGE
    except Exception as error:  # noqa: BLE001 - report any client failure as one readable line
        print(f"claims-worker publish: {classify(error)}", file=sys.stderr)
        return ExitCode.FAILURE
    finally:
        producer.close(timeout=10)
    print(f"published {len(futures)} records to {topic}")
    return ExitCode.OK
