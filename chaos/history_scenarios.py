"""The claim-history scenarios of issue 12: faults around the changelog, the commit and the local stores.

Each runs in one delivery mode on claim-history traffic (`chaos.traffic.history_claims`) and ends, like every
scenario, with the ledger (nothing lost; nothing doubled in exactly_once) and the history oracle (`chaos.oracle`:
every history verdict equals the fold over the committed repartition order, so no false CARC 18 on a replayed
claim). Kills at exact points go through `chaos.faulty_worker` (its docstring says where each point is); the
worker's own packages carry no fault code.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from pydantic import SecretStr

from chaos.faulty_worker import FAULT_EVENT
from chaos.scenarios import INPUT_PARTITIONS, Plan, Run
from chaos.traffic import Publisher, history_claims
from chaos.workers import ScenarioError, WorkerProcess
from schemas.history import HistoryLine
from worker.history.keys import MemberKeyer, entry_key
from worker.topic_reader import TopicReader

# A killed worker restarts as the same replica (static membership, as in the crash scenario): it takes its
# partitions back at once, and in exactly_once its transactional id fences the killed one's open transaction.
REPLICA_SETTINGS = {"batch_max_records": "200", "group_instance_id": "w1"}
FAULT_EXIT_TIMEOUT_S = 120.0
KILLS = 3
# The zombie scenario: a transaction timeout well above the session timeout (6 s), so that the new owner is
# restoring while the killed worker's transaction is still open; the broker aborts it within its cleanup interval
# (transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s by default) after the timeout.
ZOMBIE_TRANSACTION_TIMEOUT_MS = 15_000
ZOMBIE_WATCH_S = 60.0
HELD_SAMPLE_GAP_S = 1.0
# Store damage: how a store directory is corrupted (`chaos --store-corruption`). `current` and `manifest` make
# RocksDB refuse to open the store; `block` flips a byte in a data block of an SST file, which opening does not read
# (the worker finds it when a read reaches the block, and rebuilds the store then).
CORRUPTIONS = ("current", "manifest", "block")
# Restore scenario: padding entries per padded member, and their service dates (inside the traffic's window, so
# that expiry does not sweep them).
PADDING_ENTRIES_PER_MEMBER = 10
PADDING_FIRST_DAY = dt.date(2026, 3, 1)


def _publish_history(run: Run, plan: Plan) -> Publisher:
    return run.publish(plan, records=history_claims(plan.claims, run.run_id, run.rng))


def _life_killed_at(
    run: Run, name: str, point: str, settings: dict[str, str], *, first: int = 1, last: int = 4
) -> None:
    """Start `name` with a fault at `point` (on a random qualifying call in [first, last]) and wait until it fired."""
    at = run.rng.randint(first, last)
    worker = run.start_worker(name, fault=f"{point}:{at}", **settings)
    code = worker.wait_exit(FAULT_EXIT_TIMEOUT_S)
    if code is None:
        code, _ = worker.terminate()
        run.end(worker, "SIGTERM", code)
        run.problems.append(f"{name}: the fault {point}:{at} did not fire within {FAULT_EXIT_TIMEOUT_S:.0f}s")
        return
    fired = worker.named(FAULT_EVENT)
    run.end(worker, "SIGKILL (itself)", code, point=point, call=at)
    if code != -9 or not fired:
        run.problems.append(f"{name} exited with {code} at {point}:{at} (expected -9 after {FAULT_EVENT})")
        return
    run.restarts += 1
    run.faults.append(f"{run.at()} kill -9 {name} at {point}, call {at} (after {worker.records_processed()} records)")


def _restored(workers: list[WorkerProcess]) -> tuple[int, int]:
    """(restores, changelog records they read) over these workers' logs."""
    lines = [line for worker in workers for line in worker.named("history.restored")]
    return len(lines), sum(int(line.get("records", 0)) for line in lines)


def _note_restores(run: Run) -> None:
    restores, records = _restored(run.workers)
    run.faults.append(f"{restores} store restores read {records} changelog records in all")


# --- 1. kill between the changelog writes and the commit ------------------------------------------------------------


def history_uncommitted_kill(run: Run, plan: Plan) -> None:
    """kill -9 between the changelog writes and the commit, three times; the same replica restarts each time.

    at_least_once: at `changelog_flushed` (the batch's changelog records flushed, its verdicts not sent) and at
    `offsets_commit` (changelog and verdicts flushed, offsets not committed), alternately. The restart restores
    from the changelog and must skip the records of the uncommitted batch (their `history.source.offset` is at or
    past the committed offset), or the batch's claims, judged again, would meet their own batch's entries.
    exactly_once: at `transaction_commit` (the transaction's changelog records and verdicts in the log, before
    `send_offsets_to_transaction`): the restart's `init_transactions` aborts it; the restore reads committed only.
    """
    points = (
        ["changelog_flushed", "offsets_commit", "changelog_flushed"]
        if run.delivery == "at_least_once"
        else ["transaction_commit"] * KILLS
    )
    publisher = _publish_history(run, plan)
    for point in points:
        _life_killed_at(run, "w1", point, REPLICA_SETTINGS)
    run.start_worker("w1", **REPLICA_SETTINGS)
    run.wait_complete(publisher)
    _note_restores(run)


# --- 2. kill after the commit, before the local store write -------------------------------------------------------


def history_unwritten_store_kill(run: Run, plan: Plan) -> None:
    """kill -9 after the commit and before the local store write (`store_write`), three times, both modes.

    The batch is durable and committed (at_least_once: changelog, verdicts, offsets; exactly_once: its
    transaction), its changes are in no store: the restart must read them from the changelog (they are below
    the committed offset, so none is skipped), or a later duplicate of those claims goes unflagged.
    """
    publisher = _publish_history(run, plan)
    for _ in range(KILLS):
        _life_killed_at(run, "w1", "store_write", REPLICA_SETTINGS)
    run.start_worker("w1", **REPLICA_SETTINGS)
    run.wait_complete(publisher)
    _note_restores(run)


# --- 3. deleted and corrupted store directories ---------------------------------------------------------------------


def store_dirs(run: Run, name: str) -> list[Path]:
    """The store directories of worker `name`, by partition."""
    root = run.state_dir / run.group / run.worker_id(name)
    return sorted(path for path in root.glob("*") if path.is_dir()) if root.exists() else []


def partition_of(store: Path) -> int:
    return int(store.name.rsplit("-", 1)[1])


def corrupt(store: Path, how: str) -> bool:
    """Damage a store directory: `current` (CURRENT overwritten), `manifest` (MANIFEST truncated), `block` (one
    byte flipped early in the largest SST file: a data block, not read when the store opens). False when there was
    nothing to damage that way (`block` on a store whose writes never left its memtables)."""
    if how == "current":
        (store / "CURRENT").write_bytes(b"\x00not a manifest name")
    elif how == "manifest":
        manifests = list(store.glob("MANIFEST-*"))
        for manifest in manifests:
            manifest.write_bytes(manifest.read_bytes()[:20])
        return bool(manifests)
    elif how == "block":
        tables = sorted(store.glob("*.sst"), key=lambda table: table.stat().st_size)
        if not tables:
            return False
        data = bytearray(tables[-1].read_bytes())
        data[min(2000, len(data) // 4)] ^= 0xFF
        tables[-1].write_bytes(bytes(data))
    else:
        raise ValueError(f"unknown corruption {how!r} (one of {', '.join(CORRUPTIONS)})")
    return True


def history_store_damage(run: Run, plan: Plan) -> None:
    """Deleted and corrupted store directories between lives of one replica.

    Life 1 processes about a third of the traffic and stops cleanly (SIGTERM: its stores are flushed and closed);
    then half of its store directories are deleted and the other half corrupted (`plan.corruptions`, round
    robin). Life 2 must rebuild every one of them from the changelog (`history.store_rebuilt` for each corrupted
    one) and is killed (-9) later; its stores are damaged again the same way, and life 3 finishes the traffic.
    """
    publisher = _publish_history(run, plan)
    worker = run.start_worker("w1", **REPLICA_SETTINGS)
    block_damaged: set[int] = set()
    lives = []
    for life in (1, 2):
        _wait_processed(worker, plan.claims * life // 3)
        if life == 1:
            run.sigterm(worker)
            run.faults.append(f"{run.at()} SIGTERM w1 (after {worker.records_processed()} records)")
        else:
            run.kill9(worker)
        corrupted = _damage_stores(run, plan)
        worker = run.start_worker("w1", **REPLICA_SETTINGS)
        lives.append(worker)
        run.restarts += 1
        _wait_restored(worker, INPUT_PARTITIONS)
        rebuilt = {int(line["partition"]) for line in worker.named("history.store_rebuilt")}
        # A store that refuses to open is rebuilt before its restore; a damaged block only when a read reaches it
        # (and a read that does must not return a short history: the oracle checks every verdict).
        refused = {partition for partition, how in corrupted.items() if how != "block"}
        missed = sorted(refused - rebuilt)
        if missed:
            run.problems.append(f"life {life + 1}: corrupted stores of partitions {missed} were not rebuilt")
        block_damaged.update(partition for partition, how in corrupted.items() if how == "block")
    run.wait_complete(publisher)
    if block_damaged:
        rebuilt = {int(line["partition"]) for life in lives for line in life.named("history.store_rebuilt")}
        rebuilt_on_read = sorted(rebuilt & block_damaged)
        run.faults.append(f"{run.at()} stores with a damaged block rebuilt when read: partitions {rebuilt_on_read}")
    _note_restores(run)


def _wait_processed(worker: WorkerProcess, records: int) -> None:
    def enough() -> bool:
        return worker.records_processed() >= records

    worker.wait_until(enough, 120, f"{records} records processed")


def _wait_restored(worker: WorkerProcess, partitions: int) -> None:
    def restored() -> bool:
        return len({line["partition"] for line in worker.named("history.restored")}) >= partitions

    worker.wait_until(restored, 120, f"the restores of {partitions} partitions")


def _damage_stores(run: Run, plan: Plan) -> dict[int, str]:
    stores = store_dirs(run, "w1")
    if not stores:
        raise ScenarioError("w1 left no store directory to damage")
    run.rng.shuffle(stores)
    half = len(stores) // 2
    for store in stores[:half]:
        shutil.rmtree(store)
    corrupted = {}
    for number, store in enumerate(stores[half:]):
        how = plan.corruptions[number % len(plan.corruptions)]
        if corrupt(store, how):
            corrupted[partition_of(store)] = how
    deleted = sorted(partition_of(store) for store in stores[:half])
    damaged = dict(sorted(corrupted.items()))
    run.faults.append(f"{run.at()} store directories deleted: partitions {deleted}; corrupted: {damaged}")
    return corrupted


# --- 4. a rebalance in the middle of a restore ----------------------------------------------------------------------


def pad_changelog(run: Run, count: int) -> int:
    """Write `count` history entries of members absent from the traffic to the changelog, over all partitions.

    They make every restore long (seconds) without changing any verdict: the oracle's fold, which starts from an
    empty history, stays exact, because no claim of the run belongs to those members. No `history.source.offset`
    header: a restore applies them whatever the committed offsets (as entries of an earlier deployment).
    """
    keyer = MemberKeyer(SecretStr(f"chaos-padding-{run.run_id}-key"))
    producer = KafkaProducer(
        bootstrap_servers=run.broker.bootstrap,
        client_id="chaos-padding",
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    partitions = len(producer.partitions_for(run.topics.changelog))
    try:
        for number in range(count):
            member = number // PADDING_ENTRIES_PER_MEMBER
            line = HistoryLine(
                claim_id=f"PAD-{run.run_id}-{member}-{number % PADDING_ENTRIES_PER_MEMBER}",
                event_id=f"evt-pad-{run.run_id}-{number}",
                line_number=1,
                code="J9353",
                service_date=PADDING_FIRST_DAY + dt.timedelta(days=21 * (number % PADDING_ENTRIES_PER_MEMBER)),
                billing_npi="1234567893",
                modifiers=(),
                units=210.0,
                charge=Decimal("9450.00"),
                prior_authorization=None,
                waste=False,
            )
            member_key = keyer(f"PAD-{member}")
            producer.send(
                run.topics.changelog,
                key=entry_key(member_key, line),
                value=line.model_dump_json().encode(),
                partition=member % partitions,
            )
        producer.flush(timeout=120)
    finally:
        producer.close(timeout=10)
    return count


def history_restore_rebalance(run: Run, plan: Plan) -> None:
    """Rebalances in the middle of restores: a worker added while one restores, one removed while another does.

    The changelog holds `plan.padding` entries before any worker starts, so that a full restore takes seconds.
    w1 starts with an empty state directory and restores all six repartition partitions; as soon as it does, w2
    (started before, held at its start gate) joins: a rebalance while w1 restores (the group's assignor balances
    the number of partitions over both topics, so w2 may take input partitions only; w1's paused partitions must
    stay paused and restoring). As soon as w2 has its partitions, the worker restoring then (w1, or w2 if the
    repartition partitions moved to it) leaves (SIGTERM) in the middle of its restore: its partitions go to the
    other, which restores them from the changelog. While that one restores, the leaver comes back (a new life, its
    stores holding the partial restores and their checkpoints): another rebalance in the middle of a restore.

    Required: the leaver was still restoring when it left, and at least two rebalances reached a worker that was
    restoring. Reported: restores stopped by a revocation (before any stop was asked for), the slowest restore.
    """
    began = time.monotonic()
    padded = pad_changelog(run, plan.padding)
    run.faults.append(f"{run.at()} changelog padded with {padded} entries in {time.monotonic() - began:.1f}s")
    publisher = _publish_history(run, plan)
    settings = {"batch_max_records": "200"}
    topic = run.topics.repartition
    gate = run.log_dir / "w2.gate"
    w1 = run.start_worker("w1", **settings)
    w2 = run.start_worker("w2", gate=str(gate), **settings)
    w1.wait_until(lambda: bool(_restoring_now(w1, topic)), 90, "a restore")
    gate.touch()
    run.faults.append(f"{run.at()} w2 joins while w1 restores partitions {sorted(_restoring_now(w1, topic))}")
    _wait_assigned(w2)
    # The assignor balances partitions over both topics, so the repartition partitions (the restoring ones) may
    # have stayed with w1 or moved to w2: the one that leaves is whichever is restoring now, w1 if both are.
    leaver = next((worker for worker in (w1, w2) if _restoring_now(worker, topic)), w1)
    leaving_restoring = sorted(_restoring_now(leaver, topic))
    run.sigterm(leaver)
    run.faults.append(f"{run.at()} {leaver.name} leaves (SIGTERM) while restoring partitions {leaving_restoring}")
    if not leaving_restoring:
        run.problems.append("no worker was restoring when one left: raise CHAOS_HISTORY_PADDING")
    run.start_worker(leaver.name, **settings)
    run.restarts += 1
    run.faults.append(f"{run.at()} {leaver.name} back")
    run.wait_complete(publisher)
    mid_restore = sum(_rebalances_mid_restore(worker, topic) for worker in run.workers)
    if mid_restore < 2:
        run.problems.append(f"only {mid_restore} rebalance(s) reached a restoring worker (2 expected)")
    stopped = sum(_restores_stopped_by_rebalance(worker) for worker in run.workers)
    run.faults.append(
        f"rebalances that reached a restoring worker: {mid_restore}; restores stopped by a revocation: {stopped}; "
        f"slowest restore {_slowest_restore(run.workers):.1f}s"
    )
    _note_restores(run)


def _wait_assigned(worker: WorkerProcess) -> None:
    def assigned() -> bool:
        return bool(worker.named("kafka.partitions_assigned"))

    worker.wait_until(assigned, 90, "an assignment")


def _repartition_numbers(line: dict[str, Any], topic: str) -> set[int]:
    names = [str(name) for name in line.get("partitions", [])]
    return {int(name.rsplit("-", 1)[1]) for name in names if name.startswith(f"{topic}-")}


def _restore_timeline(worker: WorkerProcess, topic: str) -> list[tuple[str, set[int]]]:
    """(event, partitions restoring after it) for each rebalance and restore event, in log order."""
    restoring: set[int] = set()
    timeline = []
    for line in worker.events():
        event = line.get("event")
        if event == "kafka.partitions_assigned":
            restoring |= _repartition_numbers(line, topic)
        elif event in ("kafka.partitions_revoked", "kafka.partitions_lost"):
            restoring -= _repartition_numbers(line, topic)
        elif event in ("history.restored", "history.restore_stopped"):
            restoring.discard(int(line["partition"]))
        else:
            continue
        timeline.append((str(event), set(restoring)))
    return timeline


def _restoring_now(worker: WorkerProcess, topic: str) -> set[int]:
    timeline = _restore_timeline(worker, topic)
    return timeline[-1][1] if timeline else set()


def _rebalances_mid_restore(worker: WorkerProcess, topic: str) -> int:
    """Assignments and revocations that came while the worker had a restore in progress."""
    timeline = _restore_timeline(worker, topic)
    return sum(1 for (_, before), (event, _) in itertools.pairwise(timeline) if before and event.startswith("kafka."))


def _restores_stopped_by_rebalance(worker: WorkerProcess) -> int:
    """`history.restore_stopped` lines before the worker was asked to stop (closing mid-restore logs them too)."""
    stopped = 0
    for line in worker.events():
        if line.get("event") == "worker.shutdown_requested":
            break
        if line.get("event") == "history.restore_stopped":
            stopped += 1
    return stopped


def _slowest_restore(workers: list[WorkerProcess]) -> float:
    durations = [float(line.get("duration_s", 0.0)) for w in workers for line in w.named("history.restored")]
    return max(durations, default=0.0)


# --- 5. a crashed transactional writer holding the changelog's end ----------------------------------------------


def _changelog_held(readers: tuple[TopicReader, TopicReader]) -> dict[int, tuple[int, int]]:
    """Changelog partitions whose last stable offset is below their high watermark: {partition: (lso, hw)}."""
    committed, uncommitted = readers
    stable = {tp.partition: offset for tp, offset in committed.end_offsets().items()}
    ends = {tp.partition: offset for tp, offset in uncommitted.end_offsets().items()}
    return {p: (stable[p], ends[p]) for p in ends if stable.get(p, ends[p]) < ends[p]}


def _log_time(line: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(str(line["timestamp"])).timestamp()


def history_zombie_transaction(run: Run, plan: Plan) -> None:
    """A crashed transactional writer holds the changelog's end; its partitions go to a worker of another id.

    Workers `wa` and then `wb` (different worker ids, so different transactional ids: nothing fences wa's
    transaction) share the partitions; `CLAIMS_TRANSACTION_TIMEOUT_MS` is 15 s. exactly_once: wa kills itself at
    `transaction_commit` (its transaction's changelog records are in the log, uncommitted), and the open
    transaction holds the last stable offset of those changelog partitions below their high watermark until the
    coordinator aborts it. wb takes wa's partitions after the session timeout and restores them; the restore must
    wait for the abort (its end is the read_uncommitted high watermark) and not finish at the stuck stable offset:
    each of wb's restores of a held partition must end after the harness last saw the partition held, and must
    have begun before (else the check proves nothing, and the run fails). at_least_once (no transactions): wa
    kills itself at `changelog_flushed` and wb restores wa's partitions, skipping the uncommitted batch's records.
    """
    exactly_once = run.delivery == "exactly_once"
    settings = {"batch_max_records": "200", "transaction_timeout_ms": str(ZOMBIE_TRANSACTION_TIMEOUT_MS)}
    publisher = _publish_history(run, plan)
    point = "transaction_commit" if exactly_once else "changelog_flushed"
    # wa first: it owns the repartition partitions (and writes the changelog) when wb joins, since the assignor
    # may well give the joining member only input partitions.
    at = run.rng.randint(6, 10)
    wa = run.start_worker("wa", fault=f"{point}:{at}", **settings)
    wa.wait_for_batches(1)
    wb = run.start_worker("wb", **settings)
    code = wa.wait_exit(FAULT_EXIT_TIMEOUT_S)
    if code is None:
        raise ScenarioError(f"wa: the fault {point}:{at} did not fire within {FAULT_EXIT_TIMEOUT_S:.0f}s")
    killed_at = time.time()
    run.end(wa, "SIGKILL (itself)", code, point=point, call=at)
    if code != -9 or not wa.named(FAULT_EVENT):
        raise ScenarioError(f"wa exited with {code} at {point}:{at} (expected -9 after {FAULT_EVENT})")
    run.faults.append(f"{run.at()} kill -9 wa at {point}, call {at}; wb (another worker id) takes over")
    if exactly_once:
        last_held = _watch_held_changelog(run, deadline_s=ZOMBIE_WATCH_S)
        if not last_held:
            run.problems.append("the killed transaction held no changelog partition: the scenario missed its point")
        run.faults.append(
            f"{run.at()} open transaction held changelog partitions {sorted(last_held)} for "
            f"{max(last_held.values(), default=killed_at) - killed_at:.1f}s after the kill"
        )
        run.wait_complete(publisher)
        _check_restores_waited(run, wb, last_held, killed_at)
    else:
        run.wait_complete(publisher)
    _note_restores(run)


def _watch_held_changelog(run: Run, *, deadline_s: float) -> dict[int, float]:
    """The changelog partitions the killed writer's open transaction holds, and when each was last seen held.

    Held: the partition's last stable offset is below its high watermark and stays where it was in two samples a
    second apart right after the kill (before wb can own those partitions: the killed member keeps them until its
    session times out), so that wb's own short transactions, later, are not mistaken for the killed one. A held
    partition is released when its last stable offset moves past that offset (the coordinator aborted it).
    """
    committed = TopicReader(run.broker.bootstrap, [run.topics.changelog], client_id="chaos-zombie-watch")
    uncommitted = TopicReader(
        run.broker.bootstrap, [run.topics.changelog], isolation="read_uncommitted", client_id="chaos-zombie-watch"
    )
    readers = (committed, uncommitted)
    try:
        first = _changelog_held(readers)
        time.sleep(HELD_SAMPLE_GAP_S)
        again = _changelog_held(readers)
        stuck = {p: stable for p, (stable, _) in first.items() if p in again and again[p][0] == stable}
        last_held = dict.fromkeys(stuck, time.time())
        started = time.monotonic()
        while stuck:
            stable = {tp.partition: offset for tp, offset in committed.end_offsets().items()}
            now = time.time()
            for partition, offset in list(stuck.items()):
                if stable[partition] > offset:
                    del stuck[partition]
                else:
                    last_held[partition] = now
            if time.monotonic() - started > deadline_s:
                run.problems.append(f"changelog partitions {sorted(stuck)} still held {deadline_s:.0f}s after the kill")
                break
            time.sleep(0.2)
    finally:
        committed.close()
        uncommitted.close()
    return last_held


def _check_restores_waited(run: Run, wb: WorkerProcess, last_held: dict[int, float], killed_at: float) -> None:
    topic = run.topics.repartition
    for partition, released_after in sorted(last_held.items()):
        name = f"{topic}-{partition}"
        assigned = [
            _log_time(line)
            for line in wb.named("kafka.partitions_assigned")
            if name in line.get("partitions", []) and _log_time(line) >= killed_at
        ]
        if not assigned:
            run.problems.append(f"wb was never assigned held partition {partition} after the kill")
            continue
        if assigned[0] >= released_after:
            run.problems.append(f"wb got held partition {partition} only after the transaction ended: nothing proved")
            continue
        restored = [
            line
            for line in wb.named("history.restored")
            if int(line["partition"]) == partition and _log_time(line) >= assigned[0]
        ]
        if not restored:
            run.problems.append(f"wb never finished restoring held partition {partition}")
        elif _log_time(restored[0]) < released_after:
            run.problems.append(
                f"wb finished restoring partition {partition} while the open transaction still held it "
                f"({released_after - _log_time(restored[0]):.1f}s early)"
            )
        else:
            waited = _log_time(restored[0]) - assigned[0]
            run.faults.append(f"wb's restore of held partition {partition} waited {waited:.1f}s for the abort")


HISTORY_SCENARIOS: dict[str, Callable[..., None]] = {
    "history_uncommitted_kill": history_uncommitted_kill,
    "history_unwritten_store": history_unwritten_store_kill,
    "history_store_damage": history_store_damage,
    "history_restore_rebalance": history_restore_rebalance,
    "history_zombie_txn": history_zombie_transaction,
}
