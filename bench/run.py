"""`make bench` (scripts/bench): the seven measurements of issue 7 in one run, medians of several repetitions.

    BENCH_CLAIMS=200000 BENCH_REPETITIONS=3 .venv/bin/python -m bench.run

1. rules alone (one core, no Kafka); 2. the client ceiling: a kafka-python pass-through with the worker's
client settings; 3. one worker draining the pre-loaded topic, at_least_once and exactly_once; 4. end-to-end
latency at half the at_least_once rate; 5. the worker's peak RSS over the at_least_once drain; 6. two workers
in one group against one; 7. the same pass-through on confluent-kafka (librdkafka), from `.cache/bench-deps`.

The claims are generated (`bench.claims`, fixed seed) and pre-loaded once into a topic of 6 partitions; each
repetition of each measurement reads it with a fresh consumer group and writes fresh output topics; the
repetitions are interleaved (pass-through, at_least_once, exactly_once, two workers, confluent; then again) so
that a slow spell of this shared machine hits every figure alike. A drain's rate is the claims divided by the
time from the start of the first batch to the end of the last one (from the worker's `batch.processed` log
lines: process start-up and group join are not counted); the run waits until the group has committed the end
of every partition. Uses CLAIMS_BOOTSTRAP_SERVERS, else starts a throwaway local broker.

Writes `reports/bench.json` and a copy `bench/results/<UTC date>.json`, and prints the table with the ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.claims import DEFAULT_SEED, OUTCOME_WEIGHTS, REPO_ROOT, average_bytes, generate
from bench.history import restore_and_rss
from bench.kafka import (
    CpuSampler,
    Topics,
    WorkerProcess,
    batch_window,
    broker_pid,
    create_topics,
    delete_topics,
    end_offsets,
    new_id,
    preload,
    wait_drained,
    wait_outcomes,
)
from bench.latency import WARM_UP_S
from bench.report import cpu_us_per_claim, median, missing_keys, ratios, render_table, target_results
from worker.kafka_fixes import close_sockets_of_failed_connects

REPORT = REPO_ROOT / "reports" / "bench.json"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
BENCH_DEPS = REPO_ROOT / ".cache" / "bench-deps"
PROFILE_DIR = REPO_ROOT / "reports" / "profiles"
PARTITIONS = 6
DRAIN_TIMEOUT_S = 900.0


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _run_json(
    command: Sequence[str], *, env: dict[str, str] | None = None, timeout_s: float = 1800, cwd: Path = REPO_ROOT
) -> dict[str, Any]:
    result = subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout_s, env=env, cwd=cwd, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


def _bench_deps_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DEPS), str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


# --- the measurements ----------------------------------------------------------------------------------------------


def rules_alone(count: int, seed: int, repetitions: int, tree: Path = REPO_ROOT) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.rules_alone", "--count", str(count), "--seed", str(seed)]
    result = _run_json([*command, "--repetitions", str(repetitions)], cwd=tree)
    result["claims_per_s"] = median(result["generated_rates"])
    result["examples_claims_per_s"] = median(result["examples_rates"])
    return result


def rules_alone_interleaved(
    count: int, seed: int, repetitions: int, trees: tuple[Path, Path]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`rules_alone` of two source trees, one repetition of each in turn: (this tree's result, the other's)."""
    results: list[dict[str, Any]] = [{}, {}]
    for _ in range(repetitions):
        for index, tree in enumerate(trees):
            one = rules_alone(count, seed, 1, tree=tree)
            merged = results[index]
            for key in ("generated_rates", "generated_wall_rates", "examples_rates"):
                merged.setdefault(key, []).extend(one[key])
            for key, value in one.items():
                merged.setdefault(key, value)
    for merged in results:
        merged["claims_per_s"] = median(merged["generated_rates"])
        merged["examples_claims_per_s"] = median(merged["examples_rates"])
    return results[0], results[1]


def conversion(claims: int, repetitions: int) -> dict[str, Any]:
    """X12 837P and FHIR conversion throughput (bench/conversion.py), in a process of its own on one core."""
    command = [sys.executable, "-m", "bench.conversion", "--claims", str(claims), "--repetitions", str(repetitions)]
    result = _run_json(command)
    result["x12_claims_per_s_median"] = median(result["x12_claims_per_s"])
    result["fhir_claims_per_s_median"] = median(result["fhir_claims_per_s"])
    return result


def passthrough(client: str, bootstrap: str, topic: str, count: int, sampler: CpuSampler) -> dict[str, Any]:
    sink = f"bench.{new_id()}.passthrough"
    create_topics(bootstrap, [sink], partitions=PARTITIONS)
    try:
        env = _bench_deps_env() if client == "confluent" else None
        command = [sys.executable, "-m", "bench.passthrough", client, "--bootstrap", bootstrap, "--topic", topic]
        result = _run_json([*command, "--sink", sink, "--count", str(count)], env=env)
    finally:
        delete_topics(bootstrap, [sink])
    result["broker_cpu_cores"] = sampler.cores("broker", *result.pop("window"))
    return result


def drain(
    bootstrap: str,
    topic: str,
    ends: dict[int, int],
    *,
    delivery: str,
    sampler: CpuSampler,
    workers: int = 1,
    profile: bool = False,
    tree: Path = REPO_ROOT,
    extra_env: dict[str, str] | None = None,
    history: bool = False,
) -> dict[str, Any]:
    """One drain of the pre-loaded topic; `history`: the stateful worker (claim history on, both stages)."""
    topics = Topics.fresh(topic)
    create_topics(bootstrap, topics.outputs, partitions=PARTITIONS)
    if history:
        topics.create_history_topics(bootstrap, partitions=PARTITIONS)
    group = f"bench-{new_id()}"
    processes: list[WorkerProcess] = []
    try:
        for number in range(workers):
            name = f"{group}-{delivery}-{number}"
            profile_to = PROFILE_DIR / f"worker-{delivery}-{workers}w-{number}.folded" if profile else None
            process = WorkerProcess.start(
                bootstrap,
                topics,
                group=group,
                delivery=delivery,
                name=name,
                profile_to=profile_to,
                tree=tree,
                extra_env=extra_env,
                history=history,
            )
            sampler.watch(name, process.popen.pid)
            processes.append(process)
        wait_drained(bootstrap, group, topic, ends, processes, DRAIN_TIMEOUT_S)
        if history:  # stage B: every deferred claim judged too
            wait_outcomes(processes, sum(ends.values()), DRAIN_TIMEOUT_S)
        validation_us = [process.validation_us_per_claim() for process in processes]
    finally:
        for process in processes:
            process.stop()
        delete_topics(bootstrap, [*topics.outputs, *([topics.repartition, topics.changelog] if history else [])])
    start, end, processed, batches = batch_window(processes)
    claims = sum(ends.values())
    return {
        "delivery": delivery,
        "history": history,
        "workers": workers,
        "claims": claims,
        "processed": processed,  # above `claims` when a rebalance made a worker repeat records
        "batches": batches,
        "seconds": round(end - start, 3),
        "claims_per_s": round(claims / (end - start), 1),
        "peak_rss_mb": [round(process.peak_rss_kb / 1024, 1) for process in processes],
        "main_peak_rss_mb": [round(process.main_peak_rss_kb / 1024, 1) for process in processes],
        "sum_of_peak_rss_mb": [round(process.sum_of_peaks_kb / 1024, 1) for process in processes],
        "peak_pss_mb": [round(process.peak_pss_kb / 1024, 1) for process in processes],
        "worker_cpu_cores": [sampler.cores(process.name, start, end) for process in processes],
        "evaluator_cpu_cores": [sampler.cores(f"{process.name}/children", start, end) for process in processes],
        "broker_cpu_cores": sampler.cores("broker", start, end),
        "validation_us_per_claim": validation_us,  # inside the worker (its histogram's mean)
        # All the worker's processes (main and evaluator children), CPU seconds per claim, over the batch window.
        "cpu_us_per_claim": cpu_us_per_claim(
            [sampler.cores(process.name, start, end) for process in processes]
            + [sampler.cores(f"{process.name}/children", start, end) for process in processes],
            claims / (end - start),
        ),
    }


def latency_run(
    bootstrap: str, seed: int, rate: float, duration_s: float, delivery: str, *, worker_env: dict[str, str]
) -> dict[str, Any]:
    topic = f"bench.{new_id()}.latency.in"
    create_topics(bootstrap, [topic], partitions=PARTITIONS)
    topics = Topics.fresh(topic)
    create_topics(bootstrap, topics.outputs, partitions=PARTITIONS)
    process = WorkerProcess.start(
        bootstrap,
        topics,
        group=f"bench-{new_id()}",
        delivery=delivery,
        name=f"latency-{delivery}-{new_id()}",
        extra_env=worker_env,
    )
    try:
        process.wait_for("kafka.partitions_assigned", 120)
        command = [
            sys.executable, "-m", "bench.latency", "--bootstrap", bootstrap, "--input", topic,
            "--outputs", ",".join(topics.outputs), "--rate", str(rate),
            "--count", str(max(int(rate * (duration_s + WARM_UP_S)), 100)), "--seed", str(seed + 1),
        ]  # fmt: skip
        result = _run_json(command, env=_bench_deps_env())
        process.sample_rss()
        result["worker_peak_rss_mb"] = round(process.peak_rss_kb / 1024, 1)
    finally:
        process.stop()
        delete_topics(bootstrap, [topic, *topics.outputs])
    result["delivery"] = delivery
    return result


# --- the report ----------------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in (
        "kafka-python", "crc32c", "pydantic", "pydantic-core", "prometheus-client", "structlog", "simple-icd-10-cm",
    ):  # fmt: skip
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["kafka_broker"] = os.environ.get("BENCH_BROKER_VERSION", "unknown")
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0912, PLR0915 - one linear script of seven measurements
    close_sockets_of_failed_connects()  # kafka-python defect, see worker/kafka_fixes.py
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=_env_int("BENCH_CLAIMS", 200_000))
    parser.add_argument("--repetitions", type=int, default=_env_int("BENCH_REPETITIONS", 3))
    parser.add_argument("--seed", type=int, default=_env_int("BENCH_SEED", DEFAULT_SEED))
    parser.add_argument("--latency-s", type=float, default=float(_env_int("BENCH_LATENCY_S", 20)))
    parser.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", ""),
        help="comma-separated subset (development): rules,conversion,passthrough,alos,eos,history_alos,"
        "history_eos,history_restore,latency,scale,confluent; rules and conversion alone need no broker",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the workers (reports/profiles/); no results")
    parser.add_argument("--no-copy", action="store_true", help="do not write bench/results/<date>.json")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="CLAIMS_X=VALUE",
        help="a worker setting for every drain and the latency run (default: the worker's own defaults)",
    )
    parser.add_argument(
        "--compare-env",
        action="append",
        default=[],
        metavar="CLAIMS_X=VALUE",
        help="run the compared drains with this worker setting (e.g. CLAIMS_EVALUATOR_PROCESSES=0)",
    )
    parser.add_argument(
        "--compare-tree",
        type=Path,
        default=None,
        help="also run rules alone and the worker drains from this source tree (e.g. a `git archive` of the "
        "previous commit), interleaved with this one: before/after figures from the same run",
    )
    args = parser.parse_args(argv)
    only = {part.strip() for part in args.only.split(",") if part.strip()}

    def wanted(name: str) -> bool:
        return not only or name in only

    bootstrap = os.environ.get("CLAIMS_BOOTSTRAP_SERVERS")
    kafka_free = bool(only) and only <= {"rules", "conversion"}
    if not bootstrap and not kafka_free:
        say("CLAIMS_BOOTSTRAP_SERVERS is not set: run scripts/bench (make bench), which starts a broker")
        return 2
    started = time.time()
    report: dict[str, Any] = {
        "started_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "claims": args.claims,
        "repetitions": args.repetitions,
        "seed": args.seed,
        "partitions": PARTITIONS,
        "outcome_weights": dict(OUTCOME_WEIGHTS),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count() or 0,
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        "versions": _versions(),
    }
    repetitions = max(1, args.repetitions)

    compare: dict[str, Any] = {}
    if wanted("rules"):
        say(f"1/7 rules alone on one core ({min(args.claims, 50_000)} claims x {repetitions})")
        if args.compare_tree is None:
            rules = rules_alone(min(args.claims, 50_000), args.seed, max(repetitions, 3))
        else:
            # Before/after in the same run: one repetition of each tree in turn, so a slow spell hits both.
            say(f"  interleaved with the compared tree {args.compare_tree}")
            rules, compared = rules_alone_interleaved(
                min(args.claims, 50_000), args.seed, max(repetitions, 3), (REPO_ROOT, args.compare_tree)
            )
            compare["tree"] = str(args.compare_tree)
            compare["rules"] = compared
            compare["rules_claims_per_s"] = compared["claims_per_s"]
            say(f"rules alone, compared tree: {compared['claims_per_s']:,.0f} claims/s")
        report["rules"] = rules
        report["rules_claims_per_s"] = rules["claims_per_s"]
        report["rules_examples_mix_claims_per_s"] = rules["examples_claims_per_s"]
        say(f"rules alone: {rules['claims_per_s']:,.0f} claims/s (examples as they are: "
            f"{rules['examples_claims_per_s']:,.0f}); outcomes {rules['generated_outcomes']}")  # fmt: skip

    if wanted("conversion"):
        say(f"conversion: a 10,000-claim 837P file and FHIR Bundles x {repetitions}")
        converted = conversion(10_000, repetitions)
        report["conversion"] = converted
        report["conversion_x12_claims_per_s"] = converted["x12_claims_per_s_median"]
        report["conversion_fhir_claims_per_s"] = converted["fhir_claims_per_s_median"]
        say(f"conversion: X12 837P {converted['x12_claims_per_s_median']:,.0f} claims/s, FHIR "
            f"{converted['fhir_claims_per_s_median']:,.0f} claims/s; pyx12 maps per document "
            f"{median(converted['x12_ms_per_document_fresh_maps']):.1f} ms fresh, "
            f"{median(converted['x12_ms_per_document_cached_maps']):.1f} ms kept")  # fmt: skip
    if kafka_free:
        return _finish(report, args, only, compare, started)

    compare_env = dict(item.split("=", 1) for item in args.compare_env)
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    report["worker_env"] = worker_env
    comparing = args.compare_tree is not None or bool(compare_env)
    compare_tree = args.compare_tree or REPO_ROOT
    if comparing:
        compare["tree"] = str(compare_tree)
        compare["env"] = compare_env

    # Members from a pool of a tenth of the claims: claim history meets each member about ten times.
    members = max(1, args.claims // 10)
    records = generate(args.claims, args.seed, members=members)
    report["average_record_bytes"] = round(average_bytes(records))
    topic = f"bench.{new_id()}.in"
    create_topics(bootstrap, [topic], partitions=PARTITIONS)
    sampler = CpuSampler()
    broker = broker_pid(bootstrap)
    if broker is not None:
        sampler.watch("broker", broker)
    runs: dict[str, list[dict[str, Any]]] = {
        "passthrough": [], "alos": [], "eos": [], "history_alos": [], "history_eos": [], "scale": [], "confluent": [],
        "compare_alos": [], "compare_eos": [],
    }  # fmt: skip
    try:
        say(f"pre-loading {args.claims:,} claims ({report['average_record_bytes']} bytes on average) into {topic}")
        preload(bootstrap, topic, records)
        del records
        ends = end_offsets(bootstrap, topic)
        steps: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
            ("passthrough", "2/7 kafka-python pass-through", lambda: passthrough("kafka-python", bootstrap, topic,
                                                                                 args.claims, sampler)),
            ("alos", "3/7 worker at_least_once", lambda: drain(bootstrap, topic, ends, delivery="at_least_once",
                                                               sampler=sampler, profile=args.profile,
                                                               extra_env=worker_env)),
            ("eos", "3/7 worker exactly_once", lambda: drain(bootstrap, topic, ends, delivery="exactly_once",
                                                             sampler=sampler, profile=args.profile,
                                                             extra_env=worker_env)),
            ("history_alos", "3/7 stateful worker (claim history) at_least_once", lambda: drain(
                bootstrap, topic, ends, delivery="at_least_once", sampler=sampler, profile=args.profile,
                extra_env=worker_env, history=True)),
            ("history_eos", "3/7 stateful worker (claim history) exactly_once", lambda: drain(
                bootstrap, topic, ends, delivery="exactly_once", sampler=sampler, profile=args.profile,
                extra_env=worker_env, history=True)),
            ("scale", "6/7 two workers at_least_once", lambda: drain(bootstrap, topic, ends, delivery="at_least_once",
                                                                     workers=2, sampler=sampler,
                                                                     profile=args.profile, extra_env=worker_env)),
            ("confluent", "7/7 confluent-kafka pass-through", lambda: passthrough("confluent", bootstrap, topic,
                                                                                  args.claims, sampler)),
        ]  # fmt: skip
        if comparing:
            steps[1:1] = [
                ("compare_alos", "3/7 compared at_least_once", lambda: drain(
                    bootstrap, topic, ends, delivery="at_least_once", sampler=sampler, tree=compare_tree,
                    extra_env=compare_env)),
                ("compare_eos", "3/7 compared exactly_once", lambda: drain(
                    bootstrap, topic, ends, delivery="exactly_once", sampler=sampler, tree=compare_tree,
                    extra_env=compare_env)),
            ]  # fmt: skip
        for repetition in range(1, repetitions + 1):
            for key, title, step in steps:
                if not wanted(key.removeprefix("compare_")):
                    continue
                say(f"{title} ({repetition}/{repetitions})")
                result = step()
                runs[key].append(result)
                say(f"  {json.dumps(result)}")
        if wanted("history_restore"):
            entries = _env_int("BENCH_HISTORY_ENTRIES", 1_000_000)
            say(f"claim history: restore {entries:,} changelog entries, then drain with them (once)")
            report["history_restore"] = restore_and_rss(
                bootstrap,
                entries=entries,
                claims=min(args.claims, 50_000),
                seed=args.seed + 2,
                members=max(1, entries // 20),
                partitions=PARTITIONS,
                sampler=sampler,
            )
            say(f"  {json.dumps(report['history_restore'])}")
    finally:
        sampler.close()
        delete_topics(bootstrap, [topic])
    report["runs"] = runs

    if runs["passthrough"]:
        report["passthrough_msgs_per_s"] = median([run["msgs_per_s"] for run in runs["passthrough"]])
    if runs["confluent"]:
        report["confluent_passthrough_msgs_per_s"] = median([run["msgs_per_s"] for run in runs["confluent"]])
    if runs["alos"]:
        report["worker_alos_claims_per_s"] = median([run["claims_per_s"] for run in runs["alos"]])
        report["worker_peak_rss_mb"] = median([run["peak_rss_mb"][0] for run in runs["alos"]])
        report["worker_main_process_peak_rss_mb"] = median([run["main_peak_rss_mb"][0] for run in runs["alos"]])
        report["worker_peak_pss_mb"] = median([run["peak_pss_mb"][0] for run in runs["alos"]])
        report["worker_sum_of_peak_rss_mb"] = median([run["sum_of_peak_rss_mb"][0] for run in runs["alos"]])
        report["worker_alos_cpu_us_per_claim"] = _median_of_known([run["cpu_us_per_claim"] for run in runs["alos"]])
    if runs["eos"]:
        report["worker_eos_claims_per_s"] = median([run["claims_per_s"] for run in runs["eos"]])
        report["worker_eos_peak_rss_mb"] = median([run["peak_rss_mb"][0] for run in runs["eos"]])
        report["worker_eos_cpu_us_per_claim"] = _median_of_known([run["cpu_us_per_claim"] for run in runs["eos"]])
    if runs["history_alos"]:
        report["worker_history_alos_claims_per_s"] = median([run["claims_per_s"] for run in runs["history_alos"]])
        report["worker_history_peak_rss_mb"] = median([run["peak_rss_mb"][0] for run in runs["history_alos"]])
    if runs["history_eos"]:
        report["worker_history_eos_claims_per_s"] = median([run["claims_per_s"] for run in runs["history_eos"]])
    if "history_restore" in report:
        restore = report["history_restore"]
        report["history_restore_records_per_s"] = restore["restore_records_per_s"]
        report["history_store_bytes_per_100k_lines"] = restore["store_bytes_per_100k_lines"]
        report["history_1m_entries_peak_rss_mb"] = restore["peak_rss_mb"]
    if runs["scale"]:
        report["two_workers_claims_per_s"] = median([run["claims_per_s"] for run in runs["scale"]])
        if runs["alos"]:
            report["two_workers_speedup"] = round(
                report["two_workers_claims_per_s"] / report["worker_alos_claims_per_s"], 3
            )

    if runs["compare_alos"]:
        compare["worker_alos_claims_per_s"] = median([run["claims_per_s"] for run in runs["compare_alos"]])
        compare["worker_peak_rss_mb"] = median([run["peak_rss_mb"][0] for run in runs["compare_alos"]])
    if runs["compare_eos"]:
        compare["worker_eos_claims_per_s"] = median([run["claims_per_s"] for run in runs["compare_eos"]])

    if wanted("latency"):
        maximum = report.get("worker_alos_claims_per_s")
        rate = maximum / 2 if maximum else float(os.environ.get("BENCH_LATENCY_RATE", "2000"))
        say(f"4/7 latency at {rate:,.0f} claims/s for {args.latency_s:.0f}s (at_least_once)")
        load_before = [round(value, 2) for value in os.getloadavg()]
        result = latency_run(bootstrap, args.seed, rate, args.latency_s, "at_least_once", worker_env=worker_env)
        result["load_average_at_start"] = load_before
        say(f"  {json.dumps(result)}")
        report["latency"] = result
        report["latency_rate_per_s"] = result["rate_per_s"]
        for key in ("p50", "p95", "p99"):
            report[f"latency_{key}_ms"] = result[f"{key}_ms"]

    confluent_version = _confluent_version()
    if confluent_version:
        report["versions"].update(confluent_version)
    return _finish(report, args, only, compare, started)


def _median_of_known(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return median(known) if known else None


def _finish(
    report: dict[str, Any], args: argparse.Namespace, only: set[str], compare: dict[str, Any], started: float
) -> int:
    """Ratios, targets and the report file; prints the table. Returns 1 when a required figure is missing."""
    if compare:
        report["compare"] = compare
    report["ratios"] = ratios(report)
    report["targets"] = [
        {"name": name, "comparison": comparison, "bound": bound, "measured": measured, "met": met}
        for name, comparison, bound, measured, met in target_results(report)
    ]
    report["seconds"] = round(time.time() - started, 1)
    # This machine may be shared: a load average well above the cores used by the bench itself marks a noisy run.
    report["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    missing = missing_keys(report)
    report["complete"] = not missing

    REPORT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    REPORT.write_text(text)
    if not args.profile and not args.no_copy and not only:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / f"{dt.datetime.now(dt.UTC):%Y-%m-%d}.json").write_text(text)
    print()
    print(render_table(report))
    if compare:
        print(f"compared ({compare['tree']}, {compare.get('env', {})}): " + ", ".join(
            f"{key} {value:,.0f}" for key, value in compare.items() if isinstance(value, int | float)))  # fmt: skip
    print(f"{args.claims:,} claims, {args.repetitions} repetitions, seed {args.seed}, {report['cpu_count']} x "
          f"{report['cpu_model']}; report: {REPORT.relative_to(REPO_ROOT)}")  # fmt: skip
    if missing:
        say(f"incomplete report, missing: {', '.join(missing)}")
        return 1
    return 0


def _confluent_version() -> dict[str, str]:
    try:
        result = subprocess.run(
            [sys.executable, "-c", "import confluent_kafka as c; print(c.version(), c.libversion()[0])"],
            capture_output=True,
            text=True,
            env=_bench_deps_env(),
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    client, library = result.stdout.split()
    return {"confluent-kafka": client, "librdkafka": library}


if __name__ == "__main__":
    sys.exit(main())
