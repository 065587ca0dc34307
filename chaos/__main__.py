"""`python -m chaos` (what `scripts/chaos` and `make chaos` run): every scenario in both modes, then the report.

    .venv/bin/python -m chaos                              # all ten scenarios, at_least_once and exactly_once
    .venv/bin/python -m chaos --scenarios crashes --deliveries exactly_once --seed 7
    .venv/bin/python -m chaos --scenarios history_store_damage --store-corruption block

Starts its own broker on a free port (`scripts/kafka-local`, wiped afterwards), writes `reports/chaos.json`,
prints a table and the JSON, and exits 1 when any scenario lost an input, produced an output for no input,
doubled one in exactly_once, saw a wrong exit code, gave a history verdict unlike the oracle's, or could not run
within the time budget.

Sizes (environment, or the flags): CHAOS_CLAIMS (the crash scenario, default 20,000 as in issue 8),
CHAOS_OTHER_CLAIMS (the four other scenarios of issue 8, default 10,000), CHAOS_HISTORY_CLAIMS (each claim-history
scenario, default 4,000), CHAOS_HISTORY_PADDING (changelog entries written before the restore scenario starts,
default 500,000), CHAOS_BUDGET_S (the whole run, default 1,140 s: a scenario that could not finish within it is
reported as not run, and the run fails), CHAOS_SEED, CHAOS_STORE_CORRUPTION (comma-separated, default
`current,manifest,block`; see `chaos.history_scenarios.corrupt`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from chaos.broker import REPO_ROOT, Broker
from chaos.history_scenarios import CORRUPTIONS, HISTORY_SCENARIOS
from chaos.scenarios import SCENARIOS as BASE_SCENARIOS
from chaos.scenarios import Plan, Run
from chaos.workers import ScenarioError
from rules.engine import RuleEngine, load_engine
from worker.kafka_fixes import close_sockets_of_failed_connects

REPORT = REPO_ROOT / "reports" / "chaos.json"
LOG_ROOT = REPO_ROOT / "reports" / "chaos"
DELIVERIES = ("at_least_once", "exactly_once")
SCENARIOS = {**BASE_SCENARIOS, **HISTORY_SCENARIOS}
# A scenario is not started with less than this left of the budget (the slowest takes about a minute and a half).
SCENARIO_RESERVE_S = 150.0
# How long each scenario spreads its input over (the crash scenario needs room for five kill-restart cycles, the
# kill scenarios of claim history for three each).
STREAM_S = {
    "crashes": 40.0,
    "broker_restart": 25.0,
    "long_outage": 20.0,
    "rebalances": 30.0,
    "graceful_stop": 2.0,
    "history_uncommitted_kill": 30.0,
    "history_unwritten_store": 30.0,
    "history_store_damage": 30.0,
    "history_restore_rebalance": 25.0,
    "history_zombie_txn": 30.0,
}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, default: all")
    parser.add_argument("--deliveries", default=",".join(DELIVERIES), help="comma-separated, default: both")
    parser.add_argument("--claims", type=int, default=_env_int("CHAOS_CLAIMS", 20_000), help="crash scenario input")
    parser.add_argument("--other-claims", type=int, default=_env_int("CHAOS_OTHER_CLAIMS", 10_000))
    parser.add_argument("--history-claims", type=int, default=_env_int("CHAOS_HISTORY_CLAIMS", 4_000))
    parser.add_argument("--history-padding", type=int, default=_env_int("CHAOS_HISTORY_PADDING", 500_000))
    parser.add_argument("--store-corruption", default=os.environ.get("CHAOS_STORE_CORRUPTION") or ",".join(CORRUPTIONS))
    parser.add_argument("--budget-s", type=float, default=float(_env_int("CHAOS_BUDGET_S", 1140)))
    parser.add_argument("--seed", type=int, default=_env_int("CHAOS_SEED", int(time.time()) % 100_000))
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    args.scenarios = [name for name in args.scenarios.split(",") if name]
    args.deliveries = [name for name in args.deliveries.split(",") if name]
    args.store_corruption = tuple(name for name in args.store_corruption.split(",") if name)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    unknown += [name for name in args.deliveries if name not in DELIVERIES]
    unknown += [name for name in args.store_corruption if name not in CORRUPTIONS]
    if unknown:
        parser.error(f"unknown scenario, delivery mode or corruption: {', '.join(unknown)}")
    return args


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    del frame
    raise KeyboardInterrupt(signal.Signals(signum).name)  # unwinds through every cleanup below


def run_one(
    broker: Broker, name: str, delivery: str, plan: Plan, rng: random.Random, *, engine: RuleEngine
) -> dict[str, Any]:
    log_dir = LOG_ROOT / f"{name}-{delivery}"
    shutil.rmtree(log_dir, ignore_errors=True)  # the logs (and stores) of the previous run of this scenario
    run = Run(scenario=name, delivery=delivery, broker=broker, log_dir=log_dir, rng=rng, engine=engine)
    try:  # the workers are stopped whatever happens, a SIGTERM of the harness (KeyboardInterrupt) included
        try:
            SCENARIOS[name](run, plan)
        except (ScenarioError, TimeoutError, RuntimeError) as error:
            run.problems.append(f"scenario aborted: {type(error).__name__}: {error}")
        except Exception as error:  # noqa: BLE001 - a harness bug must still produce a report and a failure
            run.problems.append(f"harness error: {type(error).__name__}: {error}")
            traceback.print_exc()
        try:
            return run.finish()
        except Exception as error:  # noqa: BLE001 - e.g. the broker gone: still one (failed) entry in the report
            entry = not_run(name, delivery, f"could not read the topics back: {type(error).__name__}: {error}")
            entry["problems"] = [*run.problems, *entry["problems"]]
            return entry
    finally:
        run.cleanup()


def not_run(name: str, delivery: str, why: str) -> dict[str, Any]:
    return {
        "scenario": name,
        "delivery": delivery,
        "inputs": 0,
        "outputs": 0,
        "lost": 0,
        "duplicates": 0,
        "restarts": 0,
        "wall_s": 0.0,
        "history": {"verdicts": 0, "flagged_claims": 0},
        "oracle": "-",
        "ok": False,
        "problems": [f"not run: {why}"],
    }


def table(entries: list[dict[str, Any]]) -> str:
    """One line per entry: the ledger's counts, then the oracle's (history verdicts checked, claims flagged with
    history findings, false CARC 18) and its verdict."""
    header = (
        f"{'scenario':<25} {'delivery':<14} {'inputs':>7} {'outputs':>8} {'lost':>5} {'dupl':>6} "
        f"{'restarts':>8} {'wall_s':>7} {'hist_v':>7} {'flagged':>7} {'carc18x':>7} {'oracle':>6}  ok"
    )
    lines = [header, "-" * len(header)]
    for entry in entries:
        history = entry.get("history", {})
        lines.append(
            f"{entry['scenario']:<25} {entry['delivery']:<14} {entry['inputs']:>7} {entry['outputs']:>8} "
            f"{entry['lost']:>5} {entry['duplicates']:>6} {entry['restarts']:>8} {entry['wall_s']:>7} "
            f"{history.get('verdicts', 0):>7} {history.get('flagged_claims', 0):>7} "
            f"{history.get('false_carc18', 0):>7} {entry.get('oracle', '-'):>6}  {'yes' if entry['ok'] else 'NO'}"
        )
    return "\n".join(lines)


def say(message: str) -> None:
    sys.stderr.write(f"chaos: {message}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    close_sockets_of_failed_connects()  # kafka-python defect, see worker/kafka_fixes.py
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    began = time.monotonic()
    rng = random.Random(args.seed)  # noqa: S311 - fault timing, not cryptography
    entries: list[dict[str, Any]] = []
    engine = load_engine()  # the worker's rules, for the history oracle
    broker = Broker()
    say(f"seed {args.seed}; starting a broker on {broker.bootstrap}")
    try:
        broker.start()
        for name in args.scenarios:
            for delivery in args.deliveries:
                left = args.budget_s - (time.monotonic() - began)
                if left < SCENARIO_RESERVE_S:
                    entries.append(not_run(name, delivery, f"{left:.0f}s left of the {args.budget_s:.0f}s budget"))
                    continue
                count = (
                    args.claims
                    if name == "crashes"
                    else args.history_claims
                    if name in HISTORY_SCENARIOS
                    else args.other_claims
                )
                say(f"{name} / {delivery}: {count} claims")
                plan = Plan(count, STREAM_S[name], padding=args.history_padding, corruptions=args.store_corruption)
                entry = run_one(broker, name, delivery, plan, rng, engine=engine)
                entries.append(entry)
                outcome = "ok" if entry["ok"] else f"FAILED {entry['problems']}"
                say(f"{name} / {delivery}: {outcome} in {entry['wall_s']}s")
    except KeyboardInterrupt as interrupt:
        entries.append(not_run("interrupted", "-", str(interrupt) or "SIGINT"))
    finally:
        broker.wipe()

    report = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seed": args.seed,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "claims": {
            "crashes": args.claims,
            "others": args.other_claims,
            "history": args.history_claims,
            "history_padding": args.history_padding,
            "store_corruption": list(args.store_corruption),
        },
        "total_wall_s": round(time.monotonic() - began, 1),
        "scenarios": entries,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(entries, indent=2) + "\n")
    args.report.with_suffix(".meta.json").write_text(
        json.dumps({k: v for k, v in report.items() if k != "scenarios"}, indent=2) + "\n"
    )
    sys.stdout.write(table(entries) + "\n\n" + json.dumps(entries, indent=2) + "\n")
    failed = [f"{entry['scenario']}/{entry['delivery']}" for entry in entries if not entry["ok"]]
    say(f"{len(entries) - len(failed)} of {len(entries)} passed in {report['total_wall_s']}s; report: {args.report}")
    if failed:
        say(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
