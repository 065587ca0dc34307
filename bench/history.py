"""Claim history's bench figures: the restore rate, the store size per 100,000 claim lines, and a worker's peak RSS
with 1,000,000 history entries.

A synthetic changelog of `entries` entries (J9353 lines of members of the bench generator's pool, keyed with the
bench's history key and placed on the partition the worker's repartitioning would give each member) is produced
straight to a fresh compacted changelog topic. Then one stateful worker with an empty state directory restores it
(its `history.restored` lines give records and durations: the partitions restore together, so the rate is all
records over the longest duration), drains the pre-loaded claims (members of the same pool, so that lookups meet
those entries), and stops; the state directory's size and the worker's peak RSS are read then.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.partitioner.default import murmur2
from pydantic import SecretStr

from bench.claims import generate, member_id
from bench.kafka import (
    HISTORY_KEY,
    LOG_DIR,
    CpuSampler,
    Topics,
    WorkerProcess,
    create_topics,
    delete_topics,
    end_offsets,
    new_id,
    preload,
    wait_drained,
    wait_outcomes,
)
from schemas.history import HistoryLine
from worker.history.keys import MemberKeyer, entry_key
from worker.history.stage import SOURCE_OFFSET_HEADER

RESTORE_TIMEOUT_S = 900.0
FIRST_SERVICE_DATE = dt.date(2025, 1, 6)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition kafka-python's default partitioner gives `key` (the worker's repartitioning)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def produce_entries(bootstrap: str, topic: str, *, entries: int, members: int, partitions: int) -> int:
    """`entries` history entries, round robin over `members` members (21 days apart per member). Returns the count."""
    keyer = MemberKeyer(SecretStr(HISTORY_KEY))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50, batch_size=1024 * 1024)
    try:
        for number in range(entries):
            round_, member = divmod(number, members)
            member_key = keyer(member_id(member))
            line = HistoryLine(
                claim_id=f"BENCH-H-{number:09d}",
                event_id=f"evt-bench-h-{number:09d}",
                line_number=1,
                code="J9353",
                service_date=FIRST_SERVICE_DATE + dt.timedelta(days=21 * (round_ % 20)),
                billing_npi="1234567893",
                modifiers=(),
                units=210.0,
                charge=Decimal("9450.00"),
                prior_authorization=None,
                waste=False,
            )
            producer.send(
                topic,
                key=entry_key(member_key, line),
                value=line.model_dump_json().encode(),
                headers=[(SOURCE_OFFSET_HEADER, b"-1")],  # before any committed offset: always applied
                partition=partition_of(member_key.encode(), partitions),
            )
        producer.flush(timeout=900)
    finally:
        producer.close(timeout=10)
    return entries


def restore_and_rss(
    bootstrap: str, *, entries: int, claims: int, seed: int, members: int, partitions: int, sampler: CpuSampler
) -> dict[str, Any]:
    """See the module docstring. The worker's input topic is empty while it restores (the restore alone is
    measured); the `claims` claims are published once every partition is restored."""
    topics = Topics.fresh(f"bench.{new_id()}.history.in")
    create_topics(bootstrap, [topics.input, *topics.outputs], partitions=partitions)
    topics.create_history_topics(bootstrap, partitions=partitions)
    group = f"bench-history-{new_id()}"
    name = f"{group}-restore"
    try:
        began = time.monotonic()
        produce_entries(bootstrap, topics.changelog, entries=entries, members=members, partitions=partitions)
        produced_s = time.monotonic() - began
        process = WorkerProcess.start(bootstrap, topics, group=group, delivery="at_least_once", name=name, history=True)
        sampler.watch(name, process.popen.pid)
        try:
            restored = _wait_restored(process, partitions)
            process.sample_rss()
            rss_after_restore = process.peak_rss_kb
            preload(bootstrap, topics.input, generate(claims, seed, members=members))
            ends = end_offsets(bootstrap, topics.input)
            wait_drained(bootstrap, group, topics.input, ends, [process], RESTORE_TIMEOUT_S)
            wait_outcomes([process], claims, RESTORE_TIMEOUT_S)
            process.sample_rss()
        finally:
            process.stop()
        size = _size(LOG_DIR / f"{name}.state")
    finally:
        delete_topics(bootstrap, [topics.input, *topics.outputs, topics.repartition, topics.changelog])
    records = sum(event["records"] for event in restored)
    longest = max(event["duration_s"] for event in restored)
    return {
        "entries": entries,
        "members": members,
        "produce_s": round(produced_s, 1),
        "restored_records": records,
        "restore_s": round(longest, 3),
        "restore_records_per_s": round(records / longest, 1) if longest > 0 else None,
        "store_bytes": size,
        "store_bytes_per_100k_lines": round(size / max(records, 1) * 100_000),
        "peak_rss_mb_after_restore": round(rss_after_restore / 1024, 1),
        "peak_rss_mb": round(process.peak_rss_kb / 1024, 1),
        "claims_drained": claims,
    }


def _wait_restored(process: WorkerProcess, partitions: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + RESTORE_TIMEOUT_S
    while time.monotonic() < deadline:
        process.sample_rss()
        done = process.events("history.restored")
        if len({event["partition"] for event in done}) >= partitions:
            return done
        if process.popen.poll() is not None:
            raise RuntimeError(f"worker exited with {process.popen.returncode}; see {process.log_path}")
        time.sleep(0.2)
    raise RuntimeError(f"the restore did not finish within {RESTORE_TIMEOUT_S:.0f}s; see {process.log_path}")


def _size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
