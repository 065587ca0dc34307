"""Kafka plumbing of the benchmarks: topics, pre-loading, group progress, and worker processes with their logs."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from bench.claims import REPO_ROOT
from worker.topic_set import CHANGELOG_CONFIGS

LOG_DIR = REPO_ROOT / "reports" / "bench-logs"
# The member-key secret of the bench's stateful workers (bench/history.py keys its synthetic history with it).
HISTORY_KEY = "bench-history-key-0123456789abcdef"


def new_id() -> str:
    return uuid.uuid4().hex[:8]


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="claims-bench")


def create_topics(
    bootstrap: str, topics: Sequence[str], *, partitions: int, configs: dict[str, str] | None = None
) -> None:
    client = admin(bootstrap)
    try:
        client.create_topics(
            [
                NewTopic(topic, num_partitions=partitions, replication_factor=1, topic_configs=configs)
                for topic in topics
            ]
        )
    finally:
        client.close()
    deadline = time.monotonic() + 30
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="claims-bench")
    try:
        while time.monotonic() < deadline:  # metadata of new topics reaches clients a moment later
            known = consumer.topics()
            if all(topic in known and consumer.partitions_for_topic(topic) for topic in topics):
                return
            time.sleep(0.1)
    finally:
        consumer.close()


def delete_topics(bootstrap: str, topics: Sequence[str]) -> None:
    client = admin(bootstrap)
    try:
        client.delete_topics(list(topics))
    except Exception as error:  # noqa: BLE001 - clean-up only
        print(f"bench: could not delete topics {list(topics)}: {error}", file=sys.stderr)
    finally:
        client.close()


def preload(bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50, batch_size=1024 * 1024)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=600)
    finally:
        producer.close(timeout=10)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="claims-bench")
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def committed(client: KafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets on `topic`; empty while its coordinator is not there yet (a fresh group)."""
    try:
        offsets = client.list_group_offsets(group).get(group, {})
    except KafkaError as error:
        if not error.retriable:
            raise
        return {}
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


def wait_drained(  # noqa: PLR0917 - the drain's coordinates
    bootstrap: str, group: str, topic: str, ends: dict[int, int], processes: Sequence[WorkerProcess], timeout_s: float
) -> None:
    """Until the group has committed the end of every partition; raises if a worker dies or time runs out."""
    client = admin(bootstrap)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for process in processes:
                process.sample_rss()
                if process.popen.poll() is not None:
                    raise RuntimeError(f"worker exited with {process.popen.returncode}; see {process.log_path}")
            done = committed(client, group, topic)
            if all(done.get(partition, 0) >= end for partition, end in ends.items()):
                return
            time.sleep(0.2)
    finally:
        client.close()
    raise RuntimeError(f"group {group} did not drain {topic} within {timeout_s:.0f}s")


def wait_outcomes(processes: Sequence[WorkerProcess], claims: int, timeout_s: float) -> None:
    """Until the workers together brought `claims` claims to their outcome (`claims_consumed_total`).

    For a stateful drain, after the input is committed: stage B's repartition topic has no fixed end to wait for
    (in exactly_once its end offsets count the transaction markers, which no commit reaches).
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in processes:
            process.sample_rss()
            if process.popen.poll() is not None:
                raise RuntimeError(f"worker exited with {process.popen.returncode}; see {process.log_path}")
        if sum(process.metric("claims_consumed_total") for process in processes) >= claims:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the workers did not bring {claims} claims to their outcome within {timeout_s:.0f}s")


@dataclass
class Topics:
    input: str
    passed: str
    failed: str
    dlq: str
    repartition: str
    changelog: str

    @classmethod
    def fresh(cls, input_topic: str) -> Topics:
        run = new_id()
        return cls(
            input_topic,
            f"bench.{run}.pass",
            f"bench.{run}.fail",
            f"bench.{run}.dlq",
            f"bench.{run}.by-member",
            f"bench.{run}.changelog",
        )

    @property
    def outputs(self) -> list[str]:
        return [self.passed, self.failed, self.dlq]

    def create_history_topics(self, bootstrap: str, *, partitions: int) -> None:
        create_topics(bootstrap, [self.repartition], partitions=partitions)
        create_topics(bootstrap, [self.changelog], partitions=partitions, configs=dict(CHANGELOG_CONFIGS))


@dataclass
class WorkerProcess:
    """`claims-worker run` as a subprocess, its JSON log in a file, its peak RSS sampled from /proc."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    # The resident memory of the worker's processes, shared pages counted once: the main process's RSS plus
    # its evaluator children's private pages (what they share with it is already in its RSS); sampled peak.
    peak_rss_kb: int = 0
    main_peak_rss_kb: int = 0  # the main process alone (VmHWM)
    sum_of_peaks_kb: int = 0  # the main process's VmHWM plus each child's (shared pages counted in each)
    peak_pss_kb: int = 0  # the highest sum of the processes' Pss sampled (shared pages counted once)
    _child_peaks: dict[int, int] = field(default_factory=dict)
    profiler: subprocess.Popen[bytes] | None = field(default=None)
    metrics_port: int = 0

    @classmethod
    def start(
        cls,
        bootstrap: str,
        topics: Topics,
        *,
        group: str,
        delivery: str,
        name: str,
        extra_env: dict[str, str] | None = None,
        profile_to: Path | None = None,
        tree: Path = REPO_ROOT,
        history: bool = False,
    ) -> WorkerProcess:
        """Start a worker; `tree` is the source tree it runs (another one for before/after comparisons).

        `history`: claim history on, with the topics' repartition topic and changelog and a fresh state
        directory (off otherwise: the stateless worker).
        """
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log_path = LOG_DIR / f"{name}.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("CLAIMS_")}
        env.update(
            {
                "CLAIMS_BOOTSTRAP_SERVERS": bootstrap,
                "CLAIMS_INPUT_TOPIC": topics.input,
                "CLAIMS_PASS_TOPIC": topics.passed,
                "CLAIMS_FAIL_TOPIC": topics.failed,
                "CLAIMS_DLQ_TOPIC": topics.dlq,
                "CLAIMS_GROUP_ID": group,
                "CLAIMS_WORKER_ID": name,
                "CLAIMS_DELIVERY": delivery,
                "CLAIMS_METRICS_PORT": str(free_port()),
                "CLAIMS_METRICS_HOST": "127.0.0.1",
                "CLAIMS_LOG_FORMAT": "json",
                "CLAIMS_LOG_LEVEL": "info",
                **(
                    {
                        "CLAIMS_HISTORY": "on",
                        "CLAIMS_HISTORY_KEY": HISTORY_KEY,
                        "CLAIMS_REPARTITION_TOPIC": topics.repartition,
                        "CLAIMS_CHANGELOG_TOPIC": topics.changelog,
                        "CLAIMS_STATE_DIR": str(LOG_DIR / f"{name}.state"),
                    }
                    if history
                    else {"CLAIMS_HISTORY": "off"}
                ),
                **(extra_env or {}),
            }
        )
        metrics_port = int(env["CLAIMS_METRICS_PORT"])
        log_file = log_path.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "run"], env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=tree
        )
        process = cls(name, popen, log_path, log_file, metrics_port=metrics_port)
        if profile_to is not None:
            process.profiler = _attach_profiler(popen.pid, profile_to)
        return process

    def sample_rss(self) -> None:
        """Peak RSS of the worker and its evaluator children (from /proc), and their summed Pss now."""
        pid = self.popen.pid
        main = _status_kb(pid, "VmHWM:")
        if main is None:
            return
        self.main_peak_rss_kb = max(self.main_peak_rss_kb, main)
        children = _children(pid)
        for child in children:
            peak = _status_kb(child, "VmHWM:")
            if peak is not None:
                self._child_peaks[child] = max(self._child_peaks.get(child, 0), peak)
        self.sum_of_peaks_kb = max(self.sum_of_peaks_kb, self.main_peak_rss_kb + sum(self._child_peaks.values()))
        rollups = [_smaps_rollup_kb(process) for process in (pid, *children)]
        self.peak_pss_kb = max(self.peak_pss_kb, sum(rollup.get("Pss:", 0) for rollup in rollups))
        union = rollups[0].get("Rss:", 0) + sum(
            rollup.get("Private_Clean:", 0) + rollup.get("Private_Dirty:", 0) for rollup in rollups[1:]
        )
        self.peak_rss_kb = max(self.peak_rss_kb, union, self.main_peak_rss_kb if not children else 0)

    def metric(self, name: str) -> float:
        """The sum of the samples of `name` on the worker's /metrics (0 while it does not answer)."""
        import urllib.request  # noqa: PLC0415

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return 0.0
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith((f"{name} ", f"{name}{{"))
        )

    def validation_us_per_claim(self) -> float | None:
        """Mean time to parse, validate and serialise one claim inside the worker, from its /metrics."""
        import urllib.request  # noqa: PLC0415

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        values = {}
        for line in text.splitlines():
            for suffix in ("_sum", "_count"):
                if line.startswith(f"claims_validation_duration_seconds{suffix} "):
                    values[suffix] = float(line.split()[1])
        if not values.get("_count"):
            return None
        return round(values["_sum"] / values["_count"] * 1e6, 1)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The worker's log events called `name` (complete lines only: the file is still being written)."""
        found = []
        for raw in self.log_path.read_bytes().split(b"\n"):
            if not raw.startswith(b"{") or name.encode() not in raw:
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if event.get("event") == name:
                found.append(event)
        return found

    def wait_for(self, name: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.events(name):
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"worker exited with {self.popen.returncode}; see {self.log_path}")
            time.sleep(0.05)
        raise RuntimeError(f"worker logged no {name} within {timeout_s:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        self.sample_rss()
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        if self.profiler is not None:
            try:
                self.profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.profiler.terminate()
        self.log_file.close()


def _attach_profiler(pid: int, output: Path) -> subprocess.Popen[bytes] | None:
    py_spy = REPO_ROOT / ".cache" / "bench-deps" / "bin" / "py-spy"
    if not py_spy.exists():
        print("bench: py-spy is not in .cache/bench-deps; not profiling", file=sys.stderr)
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def batch_window(processes: Sequence[WorkerProcess]) -> tuple[float, float, int, int]:
    """(start, end, records, batches) of the workers' `batch.processed` lines: first batch start to last batch end."""
    starts, ends, records, batches = [], [], 0, 0
    for process in processes:
        for event in process.events("batch.processed"):
            end = _timestamp(event["timestamp"])
            ends.append(end)
            starts.append(end - event["duration_ms"] / 1000)
            records += int(event["records"])
            batches += 1
    if not ends:
        raise RuntimeError("the workers processed nothing")
    return min(starts), max(ends), records, batches


def _timestamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads), from /proc; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def broker_pid(bootstrap: str) -> int | None:
    """The PID of a broker that scripts/kafka-local runs on the bootstrap's port, if it is one."""
    pid_file = REPO_ROOT / ".cache" / "kafka" / "run" / bootstrap.rsplit(":", 1)[-1] / "kafka.pid"
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


class CpuSampler:
    """Samples the CPU time of named processes every 0.2 s on a thread; `cores(name, start, end)` = their use."""

    def __init__(self, interval_s: float = 0.2) -> None:
        import threading  # noqa: PLC0415

        self._interval_s = interval_s
        self._pids: dict[str, int] = {}
        self._samples: dict[str, list[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self._pids[name] = pid
            self._samples[name] = []

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            now = time.time()
            with self._lock:
                pids = dict(self._pids)
            for name, pid in pids.items():
                used = cpu_seconds(pid)
                if used is None:
                    continue
                children = [cpu_seconds(child) for child in _children(pid)]
                with self._lock:
                    self._samples[name].append((now, used))
                    self._samples.setdefault(f"{name}/children", []).append(
                        (now, sum(value for value in children if value is not None))
                    )

    def cores(self, name: str, start: float, end: float) -> float | None:
        """Average cores used by `name` between the epoch times `start` and `end` (None without two samples)."""
        with self._lock:
            inside = [sample for sample in self._samples.get(name, []) if start <= sample[0] <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return round((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 2)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _status_kb(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _smaps_rollup_kb(pid: int) -> dict[str, int]:
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                values[parts[0]] = int(parts[1])
    except OSError:
        return {}
    return values


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []
