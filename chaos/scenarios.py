"""The five fault-injection scenarios of issue 8, and the `Run` every scenario (these and the claim-history ones of
`chaos.history_scenarios`) works with; each runs in one delivery mode and returns its report entry.

Every wait is bounded; every random choice comes from the run's seeded `random.Random`, so a failing run can be
repeated with `--seed`. The faults land at random moments *after* the worker has started processing (its first
`batch.processed` log line in that life), so they hit a working worker, not one still joining its group.

Claim history is on in every scenario (the worker's default): each run's topics include the repartition topic and
the compacted changelog, each run's workers keep their stores under the run's log directory, and every run ends
with the history oracle (`chaos.oracle`) besides the ledger.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import oracle
from chaos.broker import Broker
from chaos.ledger import Progress, final_tally
from chaos.traffic import Publisher, claims
from chaos.workers import FAULTY_WORKER_MODULE, WORKER_MODULE, ScenarioError, WorkerProcess
from rules.engine import RuleEngine
from worker.topic_set import TopicSet

INPUT_PARTITIONS = 6  # the input topic's, and claim history's two topics'
OUTPUT_PARTITIONS = 3
# Long outage: the worker's bound, and its request timeout (so a blocked call cannot outlast the outage check).
OUTAGE_MAX_S = 8
OUTAGE_REQUEST_TIMEOUT_MS = 10_000
COMPLETE_TIMEOUT_S = 240.0  # from the end of the faults until every input has an output


@dataclass
class Plan:
    """How big a scenario is; `claims` is the input count, `stream_s` how long the publisher spreads it over."""

    claims: int
    stream_s: float
    padding: int = 0  # changelog entries written before the workers start (the restore scenario)
    corruptions: tuple[str, ...] = ("current", "manifest", "block")  # how the store-damage scenario corrupts stores


@dataclass
class Run:
    """One scenario in one delivery mode: its broker, topics, workers and what happened to them."""

    scenario: str
    delivery: str
    broker: Broker
    log_dir: Path
    rng: random.Random
    engine: RuleEngine
    topics: TopicSet = field(init=False)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    workers: list[WorkerProcess] = field(default_factory=list)
    ended: list[WorkerProcess] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    restarts: int = 0
    broker_restarts: int = 0
    began: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.topics = self.broker.create_topics(
            f"chaos.{self.scenario}.{self.delivery}", partitions=INPUT_PARTITIONS, output_partitions=OUTPUT_PARTITIONS
        )

    @property
    def state_dir(self) -> Path:
        """Every worker's local stores: `<state_dir>/<group>/<worker id>/<repartition topic>-<partition>`."""
        return self.log_dir / "state"

    @property
    def group(self) -> str:
        return f"chaos-{self.scenario}-{self.delivery}-{self.run_id}"

    def at(self) -> str:
        return f"{time.monotonic() - self.began:.1f}s"

    def worker_id(self, name: str) -> str:
        return f"{name}-{self.run_id}"

    def start_worker(
        self, name: str, *, fault: str | None = None, gate: str | None = None, **settings: str
    ) -> WorkerProcess:
        """A worker of this run's group; `name` is its CLAIMS_WORKER_ID (stable across its restarts).

        `fault` (`<point>:<n>`) and `gate` (the path of a file to wait for) run it through `chaos.faulty_worker`.
        """
        env = {
            "CLAIMS_DELIVERY": self.delivery,
            "CLAIMS_GROUP_ID": self.group,
            "CLAIMS_WORKER_ID": self.worker_id(name),
            "CLAIMS_STATE_DIR": str(self.state_dir),
            **{f"CLAIMS_{key.upper()}": value for key, value in settings.items()},
        }
        if fault is not None:
            env["CHAOS_FAULT"] = fault
        if gate is not None:
            env["CHAOS_START_GATE"] = gate
        life = sum(1 for worker in self.workers if worker.name == name)
        module = FAULTY_WORKER_MODULE if fault is not None or gate is not None else WORKER_MODULE
        worker = WorkerProcess(
            name, self.broker.bootstrap, self.topics, self.log_dir / f"{name}.{life}.log", settings=env, module=module
        )
        self.workers.append(worker)
        return worker

    def kill9(self, worker: WorkerProcess) -> None:
        records = worker.records_processed()
        code = worker.kill9()
        self.faults.append(f"{self.at()} kill -9 {worker.name} (after {records} records in this life)")
        self.end(worker, "SIGKILL", code)

    def end(self, worker: WorkerProcess, signal_name: str | None, code: int | None, **extra: Any) -> None:
        self.ended.append(worker)
        self.exits.append({"worker": worker.name, "signal": signal_name, "exit_code": code, **extra})

    def sigterm(self, worker: WorkerProcess, *, expected: int = 0) -> float:
        code, took = worker.terminate()
        self.end(worker, "SIGTERM", code, stop_s=round(took, 2))
        if code != expected:
            self.problems.append(f"{worker.name} exited with {code} after SIGTERM (expected {expected})")
        return took

    def publish(
        self, plan: Plan, *, wait: bool = False, records: list[tuple[bytes | None, bytes]] | None = None
    ) -> Publisher:
        """Stream `records` (default: `plan.claims` example claims) over `plan.stream_s`."""
        records = claims(plan.claims, self.run_id) if records is None else records
        publisher = Publisher(self.broker.bootstrap, self.topics.input, records, plan.claims / plan.stream_s).start()
        if wait:
            publisher.join(timeout_s=plan.stream_s + 120)
        return publisher

    def wait_complete(self, publisher: Publisher | None, timeout_s: float = COMPLETE_TIMEOUT_S) -> None:
        """Until every input (once the publisher is done) has an output, or the timeout (the tally then says so)."""
        if publisher is not None:
            publisher.join(timeout_s=600)
        progress = Progress(self.broker.bootstrap, self.topics.input, self.topics.outputs)
        try:
            expected = progress.input_count()
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                progress.update()
                if len(progress.answered - {None}) >= expected:
                    return
                if not any(worker.process.poll() is None for worker in self.workers):
                    self.problems.append("every worker had exited before every input had an output")
                    return
            self.problems.append(f"not every input had an output after {timeout_s:.0f}s")
        finally:
            progress.close()

    def finish(self) -> dict[str, Any]:
        """Stop the workers still running (SIGTERM), read everything back, return the report entry."""
        for worker in self.workers:
            if worker in self.ended:
                continue
            if worker.process.poll() is None:
                self.sigterm(worker)
            else:
                self.problems.append(f"{worker.name} exited by itself with {worker.process.returncode}")
                self.end(worker, None, worker.process.returncode)
        tally = final_tally(self.broker.bootstrap, self.topics.input, self.topics.outputs)
        exactly_once = self.delivery == "exactly_once"
        history = oracle.check(self.broker.bootstrap, self.topics, self.engine)
        self.problems.extend(history.problems(exactly_once=exactly_once))
        if tally.lost:
            self.problems.append(f"{tally.lost} input(s) without an output, e.g. {tally.lost_sample}")
        if tally.unexpected:
            self.problems.append(f"{tally.unexpected} output(s) answering no input")
        if exactly_once and tally.duplicates:
            self.problems.append(
                f"{tally.duplicates} duplicate output(s) in exactly_once, e.g. {tally.duplicate_sample}"
            )
        return {
            "scenario": self.scenario,
            "delivery": self.delivery,
            "inputs": tally.inputs,
            "outputs": tally.outputs,
            "lost": tally.lost,
            "duplicates": tally.duplicates,
            "unexpected": tally.unexpected,
            "aborted_outputs": tally.aborted,
            "restarts": self.restarts,
            "broker_restarts": self.broker_restarts,
            "wall_s": round(time.monotonic() - self.began, 1),
            "history": history.summary(),
            "oracle": "ok" if not history.problems(exactly_once=exactly_once) else "FAILED",
            "ok": not self.problems,
            "problems": self.problems,
            "faults": self.faults,
            "exits": self.exits,
            "worker_peak_rss_mb": round(max((w.peak_rss_mb for w in self.workers), default=0.0), 1),
            "logs": str(self.log_dir),
        }

    def cleanup(self) -> None:
        for worker in self.workers:
            worker.ensure_stopped()


def pause(rng: random.Random, low_s: float, high_s: float) -> None:
    """Sleep a random time in [low_s, high_s]."""
    time.sleep(rng.uniform(low_s, high_s))


# --- 1. crashes ---------------------------------------------------------------------------------------------------

# The restarted process is the same replica (a container restarted in its pod): deploy/k8s gives each pod static
# group membership under its own name, so the replacement takes over the killed member's partitions at once
# instead of after its session timeout. The other scenarios use dynamic membership (the worker's default).
CRASH_SETTINGS = {"batch_max_records": "200", "group_instance_id": "w1"}


def crashes(run: Run, plan: Plan, *, kills: int = 5) -> None:
    """kill -9 the worker at random moments `kills` times during a streamed run, restarting it each time."""
    # The kills are spread over the stream: random moments, each at least a little after its life's first batch.
    moments = sorted(run.rng.uniform(0.05, 0.95) * plan.stream_s for _ in range(kills))
    publisher = run.publish(plan)
    worker = run.start_worker("w1", **CRASH_SETTINGS)
    for moment in moments:
        worker.wait_for_batches(1)
        time.sleep(max(run.rng.uniform(0.1, 0.5), moment - (time.monotonic() - run.began)))
        run.kill9(worker)
        worker = run.start_worker("w1", **CRASH_SETTINGS)
        run.restarts += 1
    run.wait_complete(publisher)


# --- 2. broker restart --------------------------------------------------------------------------------------------


def broker_restart(run: Run, plan: Plan) -> None:
    """SIGTERM the broker mid-run and start it again on the same data; the worker must carry on by itself."""
    publisher = run.publish(plan)
    worker = run.start_worker("w1", batch_max_records="200")
    worker.wait_for_batches(3)
    pause(run.rng, 0.2, 2.0)
    down = run.broker.stop()
    up = run.broker.start()
    run.broker_restarts += 1
    run.faults.append(f"{run.at()} broker restarted (stop {down:.1f}s, start {up:.1f}s)")
    run.wait_complete(publisher)
    if worker.process.poll() is not None:
        run.problems.append(f"the worker exited with {worker.process.returncode} instead of riding out the restart")
    slowest = max((line.get("duration_ms", 0.0) for line in worker.named("batch.processed")), default=0.0)
    retried = len(worker.named("batch.failed")) + len(worker.named("kafka.commit_failed"))
    run.faults.append(f"the worker rode it out: {retried} failed batches/commits, slowest batch {slowest / 1000:.1f}s")


# --- 3. long outage -----------------------------------------------------------------------------------------------


def long_outage(run: Run, plan: Plan) -> None:
    """Broker down for longer than CLAIMS_MAX_OUTAGE_S: exit 4, then a restarted worker resumes from the commits."""
    settings = {
        "batch_max_records": "200",
        "max_outage_s": str(OUTAGE_MAX_S),
        "request_timeout_ms": str(OUTAGE_REQUEST_TIMEOUT_MS),
    }
    publisher = run.publish(plan)
    worker = run.start_worker("w1", **settings)
    worker.wait_for_batches(3)
    pause(run.rng, 0.2, 2.0)
    run.broker.stop()
    down_at = time.monotonic()
    run.faults.append(f"{run.at()} broker stopped")
    code = worker.wait_exit(timeout_s=OUTAGE_MAX_S + OUTAGE_REQUEST_TIMEOUT_MS / 1000 * 3 + 30)
    run.end(worker, None, code, after_outage_s=round(time.monotonic() - down_at, 1))
    if code != 4:
        run.problems.append(f"during the outage the worker exited with {code} (expected 4, BROKER_OUTAGE)")
        worker.ensure_stopped()
    # The broker stays away for longer than the bound in any case.
    time.sleep(max(0.0, OUTAGE_MAX_S + 2 - (time.monotonic() - down_at)))
    run.broker.start()
    run.broker_restarts += 1
    run.faults.append(f"{run.at()} broker started again after {time.monotonic() - down_at:.1f}s down")
    run.start_worker("w1", **settings)
    run.restarts += 1
    run.wait_complete(publisher)


# --- 4. rebalances ------------------------------------------------------------------------------------------------


def rebalances(run: Run, plan: Plan) -> None:
    """Three workers in one group; one is killed (-9) and later a fourth joins, all while claims stream in."""
    publisher = run.publish(plan)
    workers = [run.start_worker(f"w{index}", batch_max_records="200") for index in (1, 2, 3)]
    deadline = time.monotonic() + 90
    while not all(worker.named("batch.processed") for worker in workers):
        if time.monotonic() > deadline:
            raise ScenarioError("the three workers did not all start processing within 90s")
        for worker in workers:
            if worker.process.poll() is not None:
                raise ScenarioError(f"{worker.name} exited with {worker.process.returncode} while joining")
        time.sleep(0.1)
    pause(run.rng, 0.2, 2.0)
    run.kill9(run.rng.choice(workers))
    pause(run.rng, 2.0, 5.0)
    run.start_worker("w4", batch_max_records="200")
    run.faults.append(f"{run.at()} w4 added")
    run.wait_complete(publisher)
    added = run.workers[-1]
    if not added.named("kafka.partitions_assigned"):
        run.problems.append("the added worker w4 was never assigned a partition")


# --- 5. graceful stop ---------------------------------------------------------------------------------------------


def graceful_stop(run: Run, plan: Plan, *, stops: int = 3) -> None:
    """SIGTERM at random moments while batches are in flight; each stop must end with 0 within the grace period.

    Each life starts with a backlog of its own (half the plan's claims, published before it starts), so that the
    worker is busy with full batches when the signal comes, however fast it drains.
    """
    share = max(1, plan.claims // 2)
    records = claims(share * (stops + 1), run.run_id)
    mid_batch = 0
    for life in range(stops + 1):
        chunk = records[life * share : (life + 1) * share] if life < stops else records[stops * share :]
        Publisher(run.broker.bootstrap, run.topics.input, chunk, len(chunk) / plan.stream_s).start().join(120)
        worker = run.start_worker("w1", batch_max_records="1000")
        if life == stops:
            break
        worker.wait_for_batches(1)
        pause(run.rng, 0.05, 0.5)
        processed = worker.records_processed()
        took = run.sigterm(worker)
        run.faults.append(f"{run.at()} SIGTERM {worker.name} (after {processed} records; stopped in {took:.1f}s)")
        if took > worker.grace_s:
            run.problems.append(f"{worker.name} took {took:.1f}s to stop, over its {worker.grace_s:.0f}s grace period")
        if _stopped_mid_batch(worker):
            mid_batch += 1
    run.restarts = stops
    run.faults.append(f"{mid_batch} of {stops} stops landed mid-batch (a batch finished after the signal)")
    run.wait_complete(None)


def _stopped_mid_batch(worker: WorkerProcess) -> bool:
    events = [line.get("event") for line in worker.events()]
    if "worker.shutdown_requested" not in events:
        return False
    return "batch.processed" in events[events.index("worker.shutdown_requested") :]


SCENARIOS: dict[str, Callable[..., None]] = {
    "crashes": crashes,
    "broker_restart": broker_restart,
    "long_outage": long_outage,
    "rebalances": rebalances,
    "graceful_stop": graceful_stop,
}
