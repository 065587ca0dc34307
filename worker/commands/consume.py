"""`claims-worker consume {pass,fail,dlq}`: read the worker's verdicts or dead letters back from Kafka.

The topic is the one the settings name for that role (`CLAIMS_PASS_TOPIC`, `CLAIMS_FAIL_TOPIC`, `CLAIMS_DLQ_TOPIC`),
or `--topic`. Only committed records are read (`read_committed`: what an exactly_once worker aborted or has not
committed yet is skipped). Without `--from-beginning` reading starts at the end (records written from then on);
without `--follow` it stops at the end offsets as they were when it started, with `--follow` it waits for new
records until interrupted (Ctrl-C) or `--max-records` have been read. No consumer group is joined and nothing is
committed (`worker.topic_reader.TopicReader`), so reading never disturbs the worker.

Output on stdout: JSONL (each verdict as published; a dead letter as a JSON object with its reason, error, key and
coordinates, never the original value, which can carry patient data) or `--format table` (`worker.verdict_table`,
as `validate --format table`). The count line goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from pydantic import ValidationError

from schemas.verdict import ClaimValidated
from worker.commands.flags import number_flag
from worker.commands.validate import silence_stdout
from worker.exit_codes import ExitCode
from worker.kafka_io import KafkaConfigError, classify, connection_options
from worker.routing import DLQ_ERROR, DLQ_REASON
from worker.settings import ConfigError, WorkerSettings, load_settings
from worker.topic_reader import TopicReader, TopicRecord
from worker.verdict_table import VerdictTable

ROLES = ("pass", "fail", "dlq")
_POLL_MS = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "role",
        choices=ROLES,
        help="which output topic: pass (CLAIMS_PASS_TOPIC), fail (CLAIMS_FAIL_TOPIC) or dlq (CLAIMS_DLQ_TOPIC)",
    )
    parser.add_argument("--topic", help="read this topic instead of the one the role names")
    parser.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest record (default: at the end, new records)"
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep waiting for new records until Ctrl-C (default: stop at the end)"
    )
    parser.add_argument(
        "--max-records", type=number_flag(int, ge=1), default=None, metavar="N", help="stop after N records"
    )
    parser.add_argument(
        "--format", choices=("jsonl", "table"), default="jsonl", help="output format (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout-s",
        type=number_flag(float, gt=0),
        default=60.0,
        help="wait this long for the topic's metadata, and without --follow for reading to its end (default: 60)",
    )
    parser.add_argument("--bootstrap-servers", help="overrides CLAIMS_BOOTSTRAP_SERVERS")


def topic_of(role: str, settings: WorkerSettings) -> str:
    """The topic the settings give `role` (pass, fail or dlq)."""
    return {"pass": settings.pass_topic, "fail": settings.fail_topic, "dlq": settings.dlq_topic}[role]


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(bootstrap_servers=args.bootstrap_servers)
    except ConfigError as error:
        print(f"claims-worker consume: {error}", file=sys.stderr)
        return ExitCode.CONFIG
    topic = args.topic or topic_of(args.role, settings)
    try:
        reader = TopicReader(
            settings.bootstrap_servers,
            [topic],
            client_id=f"claims-worker-consume.{settings.worker_id}",
            metadata_timeout_s=args.timeout_s,
            from_beginning=args.from_beginning,
            client_options=connection_options(settings),
        )
    except TimeoutError:
        print(
            f"claims-worker consume: topic {topic} has no partitions after {args.timeout_s:g}s: does it exist? "
            "(claims-worker topics create)",
            file=sys.stderr,
        )
        return ExitCode.CONFIG
    except Exception as error:  # noqa: BLE001 - report any client failure as one readable line
        problem = classify(error)
        print(
            f"claims-worker consume: cannot read from Kafka at {settings.bootstrap_servers}: {problem}", file=sys.stderr
        )
        return ExitCode.CONFIG if isinstance(problem, KafkaConfigError) else ExitCode.BROKER_OUTAGE
    written = 0
    try:
        with reader:
            output = _Output(args.format, sys.stdout)
            for record in _records(reader, follow=args.follow, timeout_s=args.timeout_s):
                output.write(record)
                written += 1
                if args.max_records is not None and written >= args.max_records:
                    break
            sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        return ExitCode.FAILURE
    except TimeoutError as error:
        print(f"claims-worker consume: {error}", file=sys.stderr)
        return ExitCode.BROKER_OUTAGE
    print(f"{written} records from {topic}", file=sys.stderr, flush=True)
    return ExitCode.OK


def _records(reader: TopicReader, *, follow: bool, timeout_s: float) -> Iterator[TopicRecord]:
    if follow:
        while True:
            yield from _ordered(reader.poll(_POLL_MS))
    for batch in reader.batches_to_end(timeout_s=timeout_s):
        yield from _ordered(batch)


def _ordered(batch: list[TopicRecord]) -> list[TopicRecord]:
    return sorted(batch, key=lambda record: (record.partition, record.offset))


class _Output:
    """Writes records as JSONL or as the verdict table."""

    def __init__(self, output_format: str, out: TextIO) -> None:
        self._binary: BinaryIO = out.buffer
        self._table = VerdictTable(out, label="RECORD", label_width=10) if output_format == "table" else None
        if self._table is not None:
            self._table.header()

    def write(self, record: TopicRecord) -> None:
        if self._table is not None:
            out = self._table
            label = f"{record.partition}:{record.offset}"
            if DLQ_REASON in record.headers:
                reason, error = _dead_letter_reason(record)
                out.dead_letter(label, reason, error, claim_id=_key(record))
                return
            try:
                out.verdict(label, ClaimValidated.model_validate_json(record.value or b""))
            except ValidationError:
                out.dead_letter(label, "unreadable", "not a claim.validated v1 event", claim_id=_key(record))
            sys.stdout.flush()
            return
        self._binary.write(_jsonl(record) + b"\n")

    def __repr__(self) -> str:
        return f"<_Output table={self._table!r}>"


def _jsonl(record: TopicRecord) -> bytes:
    if DLQ_REASON in record.headers:
        reason, error = _dead_letter_reason(record)
        answered = record.answers()
        source = None if answered is None else dict(zip(("topic", "partition", "offset"), answered, strict=True))
        document = {
            "schema_version": 1,
            "dead_letter": True,
            "reason": reason,
            "error": error,
            "key": _key(record),
            "record": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            "source": source,
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    value = record.value or b""
    try:
        json.loads(value)
    except ValueError:
        # Not what the worker writes; one JSON line per record all the same, naming where it is.
        document = {
            "unreadable": True,
            "record": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
        }
        return json.dumps(document, separators=(",", ":")).encode()
    return value.replace(b"\n", b" ")


def _dead_letter_reason(record: TopicRecord) -> tuple[str, str]:
    return (
        record.headers[DLQ_REASON].decode("utf-8", "replace"),
        record.headers.get(DLQ_ERROR, b"").decode("utf-8", "replace"),
    )


def _key(record: TopicRecord) -> str | None:
    return record.key.decode("utf-8", "replace") if record.key else None
