"""`scripts/run-demo` (what `make run` calls): the whole pipeline on a laptop, end to end, then a verdict table.

1. Use the broker in CLAIMS_BOOTSTRAP_SERVERS, or start a throwaway local one (`scripts/kafka-local`, free port).
2. Create this run's topics (unique names, so a rerun shows just its own records): input, outputs, and claim
   history's repartition topic and changelog.
3. Publish `examples/claims.jsonl`, keyed by claim id, as `claims-worker publish` does; then, as a second input,
   the claims of the X12 examples (`examples/837p-j9353.x12`, `examples/837i-j9353.x12`), converted and sent with
   their `source.*` headers; last, `examples/history.jsonl` in order on one partition (a claim, the same service
   again under another claim id, and a dose 10 days later), which claim history flags.
4. Run `claims-worker run` as a subprocess until every published record has an output.
5. Print the verdict table (`worker.verdict_table`, as `validate --format table`: per finding severity, line,
   rule id, CARC/RARC, message and fix) and dead letters (reason), and where metrics were served.
6. Stop what it started (worker, broker; topics on a broker it did not start) and exit 0.

Also holds the helpers the throughput benchmark shares (`LocalBroker`, `free_port`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from kafka import KafkaAdminClient, KafkaProducer

from adapters.convert import InputFormat, convert_bytes
from adapters.records import ClaimRecord
from adapters.x12.maps import X12Maps
from schemas.verdict import ClaimValidated
from worker.commands.publish import claim_key, read_lines
from worker.kafka_fixes import close_sockets_of_failed_connects
from worker.routing import DLQ_ERROR, DLQ_REASON
from worker.topic_reader import TopicReader, TopicRecord
from worker.topic_set import TopicSet
from worker.verdict_table import VerdictTable

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = REPO_ROOT / "scripts" / "kafka-local"
DEFAULT_EXAMPLES = REPO_ROOT / "examples" / "claims.jsonl"
DEFAULT_X12_EXAMPLES = (REPO_ROOT / "examples" / "837p-j9353.x12", REPO_ROOT / "examples" / "837i-j9353.x12")
DEFAULT_HISTORY_EXAMPLES = REPO_ROOT / "examples" / "history.jsonl"
STATE_DIR = REPO_ROOT / ".cache" / "demo"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def say(message: str) -> None:
    sys.stderr.write(f"run-demo: {message}\n")
    sys.stderr.flush()


class LocalBroker:
    """A throwaway broker from `scripts/kafka-local` on a free port; `stop()` wipes its data."""

    def __init__(self) -> None:
        self.port = free_port()
        self._env = {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_PYTHON": sys.executable}

    def start(self) -> str:
        result = subprocess.run(  # noqa: S603 - our own script
            [str(KAFKA_LOCAL), "start"], env=self._env, capture_output=True, text=True, timeout=900, check=False
        )
        lines = result.stdout.strip().splitlines()
        if result.returncode != 0 or not lines or not lines[-1].startswith("bootstrap="):
            raise RuntimeError(f"scripts/kafka-local start failed ({result.returncode}):\n{result.stderr[-2000:]}")
        return lines[-1].removeprefix("bootstrap=")

    def stop(self) -> None:
        subprocess.run(  # noqa: S603 - our own script
            [str(KAFKA_LOCAL), "stop", "--wipe"], env=self._env, capture_output=True, timeout=120, check=False
        )


@contextmanager
def kafka_for_demo() -> Iterator[tuple[str, bool]]:
    """(bootstrap, started_here): CLAIMS_BOOTSTRAP_SERVERS, or a local broker stopped on exit."""
    configured = os.environ.get("CLAIMS_BOOTSTRAP_SERVERS")
    if configured:
        yield configured, False
        return
    broker = LocalBroker()
    say(f"starting a local Kafka broker on 127.0.0.1:{broker.port} (scripts/kafka-local)")
    bootstrap = broker.start()
    try:
        yield bootstrap, True
    finally:
        say("stopping the local Kafka broker")
        broker.stop()


def _source_of(output: TopicRecord) -> tuple[int, int]:
    """(partition, offset) of the input an output answers; (-1, -1) for one that names none."""
    _, partition, offset = output.answers() or ("", -1, -1)
    return partition, offset


def create_topics(bootstrap: str, topics: TopicSet, *, partitions: int) -> None:
    """The run's topics: input, outputs, and claim history's (the changelog compacted)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="claims-demo")
    try:
        admin.create_topics(topics.new_topics(partitions=partitions))
    finally:
        admin.close()


def delete_topics(bootstrap: str, topics: Sequence[str]) -> None:
    with suppress(Exception):  # best effort: the names are unique to this run anyway
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="claims-demo")
        try:
            admin.delete_topics(list(topics))
        finally:
            admin.close()


def publish_lines(
    bootstrap: str,
    topic: str,
    lines: Sequence[bytes],
    records: Sequence[ClaimRecord] = (),
    in_order: Sequence[bytes] = (),
) -> list[tuple[int, int]]:
    """Publish like `claims-worker publish` (JSONL lines, then converted records with their headers, then
    `in_order` lines on one partition, so that claim history meets them in that order); returns each one's
    (partition, offset), in that order."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, key=claim_key(line), value=line) for line in lines]
        futures += [
            producer.send(topic, key=record.key, value=record.value, headers=list(record.headers)) for record in records
        ]
        futures += [producer.send(topic, key=claim_key(line), value=line, partition=0) for line in in_order]
        producer.flush(timeout=60)
        return [(meta.partition, meta.offset) for meta in (future.get(timeout=1) for future in futures)]
    finally:
        producer.close(timeout=10)


def scrape(port: int) -> dict[str, float]:
    """The worker's metrics as {sample with labels: value} (comments dropped)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


@dataclass
class DemoRun:
    """What one demo run produced: the outputs, the worker's metrics and exit code."""

    lines: list[bytes]
    placed: list[tuple[int, int]]
    outputs: list[TopicRecord]
    metrics: dict[str, float]
    metrics_port: int
    exit_code: int
    log_path: Path


def run_demo(
    examples: Path,
    *,
    delivery: str,
    timeout_s: float,
    x12_examples: Sequence[Path] = (),
    history_examples: Path | None = None,
) -> int:
    with examples.open("rb") as stream:
        lines = list(read_lines(stream))
    if not lines:
        say(f"{examples} has no claims to publish")
        return 1
    records = _converted(x12_examples)
    history_lines: list[bytes] = []
    if history_examples is not None:
        with history_examples.open("rb") as stream:
            history_lines = list(read_lines(stream))
    jsonl_count = len(lines)
    lines += [record.value for record in records] + history_lines
    run_id = time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]
    topics = TopicSet.prefixed(f"demo.{run_id}")
    names = [topic.name for topic in topics.new_topics(partitions=3)]
    with kafka_for_demo() as (bootstrap, started_here):
        say(f"creating topics demo.{run_id}.* on {bootstrap}")
        create_topics(bootstrap, topics, partitions=3)
        try:
            placed = publish_lines(bootstrap, topics.input, lines[:jsonl_count], records, history_lines)
            say(f"published {jsonl_count} claims from {examples}, {len(records)} converted from "
                f"{', '.join(path.name for path in x12_examples) or 'no X12 file'} and {len(history_lines)} from "
                f"{history_examples.name if history_examples else 'no history file'} to {topics.input}")  # fmt: skip
            run = _run_worker(bootstrap, topics, run_id, lines, placed, delivery=delivery, timeout_s=timeout_s)
        finally:
            if not started_here:
                delete_topics(bootstrap, names)
    _report(run, sys.stdout)
    if len({_source_of(output) for output in run.outputs}) != len(lines):
        say(f"only {len(run.outputs)} outputs for {len(lines)} published claims within {timeout_s:.0f}s")
        return 1
    return 0 if run.exit_code == 0 else 1


def _converted(paths: Sequence[Path]) -> list[ClaimRecord]:
    """The claims of the X12 example files, as `claims-worker publish` converts them."""
    maps = X12Maps()
    records: list[ClaimRecord] = []
    for path in paths:
        conversion = convert_bytes(path.read_bytes(), InputFormat.X12, maps=maps)
        if conversion.x12_report is not None and not conversion.x12_report.valid:
            raise RuntimeError(f"{path} breaks the X12 implementation guide")
        records.extend(conversion.records)
    return records


def _run_worker(
    bootstrap: str,
    topics: TopicSet,
    run_id: str,
    lines: list[bytes],
    placed: list[tuple[int, int]],
    *,
    delivery: str,
    timeout_s: float,
) -> DemoRun:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log_path = STATE_DIR / f"worker-{run_id}.log"
    metrics_port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLAIMS_")}
    env.update(topics.env())
    env.update(
        {
            "CLAIMS_BOOTSTRAP_SERVERS": bootstrap,
            "CLAIMS_GROUP_ID": f"demo-{run_id}",
            "CLAIMS_WORKER_ID": f"demo-{run_id}",
            "CLAIMS_DELIVERY": delivery,
            "CLAIMS_METRICS_HOST": "127.0.0.1",
            "CLAIMS_METRICS_PORT": str(metrics_port),
            "CLAIMS_LOG_FORMAT": "json",
            # Claim history on (the default): a key for this run only, stores under .cache/demo.
            "CLAIMS_HISTORY_KEY": secrets.token_hex(32),
            "CLAIMS_STATE_DIR": str(STATE_DIR / f"state-{run_id}"),
        }
    )
    say(f"starting `claims-worker run` ({delivery}); its logs: {log_path}")
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "run"], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            with TopicReader(bootstrap, (topics.passed, topics.failed, topics.dlq), client_id="claims-demo") as reader:
                outputs = reader.read_until_count(len(lines), timeout_s=timeout_s)
            metrics = _scrape_when_counted(metrics_port, len(lines))
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                exit_code = worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                exit_code = worker.wait(timeout=30)
    say(f"worker stopped (exit code {exit_code})")
    return DemoRun(lines, placed, outputs, metrics, metrics_port, exit_code, log_path)


def _report(run: DemoRun, out: TextIO) -> None:
    line_at = {
        coordinates: (index, line)
        for index, (coordinates, line) in enumerate(zip(run.placed, run.lines, strict=True), 1)
    }
    table = VerdictTable(out, label="#", label_width=len(str(len(run.lines))))
    table.header()
    counts: Counter[str] = Counter()
    for output in sorted(run.outputs, key=lambda candidate: line_at.get(_source_of(candidate), (0, b""))[0]):
        index, line = line_at.get(_source_of(output), (0, b""))
        if DLQ_REASON in output.headers:
            counts["dead letter"] += 1
            table.dead_letter(
                str(index),
                output.headers[DLQ_REASON].decode(),
                output.headers.get(DLQ_ERROR, b"").decode(),
                claim_id=(claim_key(line) or b"").decode() or None,
            )
            continue
        verdict = ClaimValidated.model_validate_json(output.value or b"")
        counts[verdict.outcome.value] += 1
        table.verdict(str(index), verdict)
    out.write("\n")
    summary = [f"{counts[outcome]} {outcome}" for outcome in ("pass", "not_applicable", "fail") if counts[outcome]]
    if counts["dead letter"]:
        summary.append(f"{counts['dead letter']} dead letter{'s' if counts['dead letter'] > 1 else ''}")
    out.write(f"{table.rows} claims: {', '.join(summary)}\n\n")
    out.write(f"metrics were served at http://127.0.0.1:{run.metrics_port}/metrics (and /healthz, /readyz):\n")
    for name, value in sorted(run.metrics.items()):
        wanted = name in ("claims_consumed_total", "claims_commits_total") or name.startswith(
            ("claims_verdicts_total{", "claims_dead_letters_total{")
        )
        if wanted and value:
            out.write(f"  {name} {value:g}\n")
    out.write(f"worker log: {run.log_path}\n")
    out.flush()


def _scrape_when_counted(port: int, expected: int, timeout_s: float = 10.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    metrics: dict[str, float] = {}
    while time.monotonic() < deadline:
        with suppress(OSError):
            metrics = scrape(port)
            if metrics.get("claims_consumed_total", 0) >= expected:
                break
        time.sleep(0.1)
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    close_sockets_of_failed_connects()  # kafka-python defect, see worker/kafka_fixes.py
    parser = argparse.ArgumentParser(prog="run-demo", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES, help="JSONL claims (default: %(default)s)")
    parser.add_argument(
        "--x12-examples",
        type=Path,
        nargs="*",
        default=list(DEFAULT_X12_EXAMPLES),
        help="X12 837 files published after the JSONL claims (default: the 837P and 837I examples)",
    )
    parser.add_argument(
        "--history-examples",
        type=Path,
        default=DEFAULT_HISTORY_EXAMPLES,
        help="JSONL claims published last, in order, for claim history to judge (default: %(default)s)",
    )
    parser.add_argument("--delivery", choices=["at_least_once", "exactly_once"], default="at_least_once")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="wait for all outputs (default: 120)")
    args = parser.parse_args(argv)
    return run_demo(
        args.examples,
        delivery=args.delivery,
        timeout_s=args.timeout_s,
        x12_examples=args.x12_examples,
        history_examples=args.history_examples,
    )


if __name__ == "__main__":
    sys.exit(main())
