"""`claims-worker publish FILE`: send claim events to the input topic, keyed by claim id.

JSONL: each non-blank line is sent unchanged (bytes as read), so malformed lines reach the worker as they are
and end on the dead-letter topic; the key is the line's `claim_id` when it is a JSON object with a string one.
X12 837P/837I and FHIR R4 files (`--input-format`, default auto) are converted first, one claim event per claim,
each with headers naming its source (`source.format`; for X12 the control numbers `source.x12.*`, for FHIR
`source.fhir.*`), so that a verdict can be traced back to the 837 or the Bundle. A file that cannot be converted,
or an X12 file that breaks the implementation guide, is reported and exits 2 with nothing published.
`-` reads standard input. Prints how many records were published.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from worker.commands.flags import number_flag
from worker.commands.inputs import (
    ClaimInput,
    ConvertedRecords,
    InputOptions,
    InputRejectedError,
    add_input_arguments,
    open_claim_input,
)
from worker.exit_codes import ExitCode
from worker.kafka_io import KafkaConfigError, KafkaIOError, classify, plain_producer
from worker.settings import ConfigError, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", metavar="FILE", help="JSONL file of claim.submitted events, X12 837P/837I or FHIR R4 ('-': stdin)"
    )
    add_input_arguments(parser)
    parser.add_argument("--topic", help="target topic (default: CLAIMS_INPUT_TOPIC)")
    parser.add_argument("--bootstrap-servers", help="overrides CLAIMS_BOOTSTRAP_SERVERS")
    parser.add_argument(
        "--timeout-s", type=number_flag(float, gt=0), default=60.0, help="wait for acknowledgements (default: 60)"
    )


def claim_key(line: bytes) -> bytes | None:
    """The record key for one JSONL line: its `claim_id` as UTF-8, or None when there is none."""
    try:
        document: Any = json.loads(line)
    except (ValueError, RecursionError):
        return None
    claim_id = document.get("claim_id") if isinstance(document, dict) else None
    return claim_id.encode() if isinstance(claim_id, str) and claim_id else None


def read_lines(stream: Iterable[bytes]) -> Iterator[bytes]:
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
        # The whole file is read (and an X12 or FHIR file converted) before connecting: a rejected file publishes
        # nothing and needs no broker to be told so.
        outgoing = _records(args.file, InputOptions.from_args(args))
    except InputRejectedError as rejected:
        return rejected.exit_code
    except OSError as error:
        print(f"claims-worker publish: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        producer = plain_producer(settings, client_id=f"claims-worker-publish.{settings.worker_id}")
    except KafkaIOError as error:
        print(f"claims-worker publish: cannot reach Kafka at {settings.bootstrap_servers}: {error}", file=sys.stderr)
        return ExitCode.CONFIG if isinstance(error, KafkaConfigError) else ExitCode.BROKER_OUTAGE
    futures = []
    try:
        for key, value, headers in outgoing:
            futures.append(producer.send(topic, key=key, value=value, headers=headers))
        producer.flush(timeout=args.timeout_s)
        failed = [future for future in futures if future.failed()]
        if failed:
            print(
                f"claims-worker publish: {len(failed)} of {len(futures)} records failed: "
                f"{classify(failed[0].exception)}",
                file=sys.stderr,
            )
            return ExitCode.FAILURE
    except Exception as error:  # noqa: BLE001 - report any client failure as one readable line
        print(f"claims-worker publish: {classify(error)}", file=sys.stderr)
        return ExitCode.FAILURE
    finally:
        producer.close(timeout=10)
    print(f"published {len(futures)} records to {topic}")
    return ExitCode.OK


Outgoing = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def _records(path: str, options: InputOptions) -> list[Outgoing]:
    """(key, value, headers) of every record to send, read whole before the first send: a file that is rejected
    publishes nothing. Raises InputRejectedError (reported) and OSError."""
    if path == "-":
        claim_input = open_claim_input(path, sys.stdin.buffer, options, command="publish")
        return _outgoing(claim_input)
    with Path(path).open("rb") as stream:
        return _outgoing(open_claim_input(path, stream, options, command="publish"))


def _outgoing(claim_input: ClaimInput) -> list[Outgoing]:
    if isinstance(claim_input, ConvertedRecords):
        return [(record.key, record.value, list(record.headers)) for record in claim_input.records]
    return [(claim_key(line), line, []) for line in read_lines(claim_input.lines)]
