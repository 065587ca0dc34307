"""The local history store on a real RocksDB: what it returns, and that damage is reported, never read past."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.history import HistoryLine
from worker.history.keys import entry_key
from worker.history.store import PartitionStore, StoreCheckpoint, StoreError, StoreMemory

pytestmark = pytest.mark.timeout(30)

MEMBERS = 50


def _line(number: int) -> HistoryLine:
    return HistoryLine(
        claim_id=f"C{number}",
        event_id=f"e{number}",
        line_number=1,
        code="J9353",
        service_date=dt.date(2026, 11, 2) - dt.timedelta(days=number % 30),
        billing_npi="1234567893",
        modifiers=(),
        units=210.0,
        charge=Decimal("9450.00"),
        prior_authorization=None,
        waste=False,
    )


def _filled_store(path: Path, entries: int = 2000) -> PartitionStore:
    store = PartitionStore(path, StoreMemory(), name="test-0")
    changes = [
        (entry_key(f"m1.{number % MEMBERS:04d}", _line(number)), _line(number).model_dump_json().encode())
        for number in range(entries)
    ]
    store.apply(changes, StoreCheckpoint(changelog_offset=entries, source_offset=entries // 2))
    return store


def test_a_member_reads_back_its_own_entries_and_the_checkpoint_survives_a_reopen(tmp_path: Path) -> None:
    _filled_store(tmp_path / "store").close()

    store = PartitionStore(tmp_path / "store", StoreMemory(), name="test-0")

    assert store.checkpoint == StoreCheckpoint(2000, 1000)
    entries = store.member_entries("m1.0007")
    assert len(entries) == 2000 // MEMBERS
    assert {HistoryLine.model_validate_json(value).claim_id for _, value in entries} == {
        f"C{number}" for number in range(7, 2000, MEMBERS)
    }
    store.close()


def test_entries_serviced_before_a_day_come_oldest_first_up_to_the_limit(tmp_path: Path) -> None:
    store = _filled_store(tmp_path / "store", entries=60)

    # 60 entries serviced 2026-10-04 to 2026-11-02, two a day: four before 2026-10-06
    assert len(store.serviced_before(dt.date(2026, 10, 6), limit=100)) == 4
    keys = store.serviced_before(dt.date(2026, 10, 6), limit=3)

    assert len(keys) == 3
    days = [key.split(b"\x00")[2] for key in keys]  # entry keys: member, code, service date, claim, line
    assert days == sorted(days)
    assert all(day < b"2026-10-06" for day in days)
    store.close()


def test_a_corrupt_data_block_fails_the_read_instead_of_returning_a_short_history(tmp_path: Path) -> None:
    # Given a store whose only table file has one bit-rotted byte in an early data block
    _filled_store(tmp_path / "store").close()
    [table] = (tmp_path / "store").glob("*.sst")
    data = bytearray(table.read_bytes())
    data[2000] ^= 0xFF
    table.write_bytes(bytes(data))

    # When it is opened (the checkpoint is elsewhere and still reads) and every member's history is read
    store = PartitionStore(tmp_path / "store", StoreMemory(), name="test-0")
    assert store.checkpoint == StoreCheckpoint(2000, 1000)

    # Then some read says the store is damaged: none returns a silently shortened history
    reads: list[int | str] = []
    for member in range(MEMBERS):
        try:
            reads.append(len(store.member_entries(f"m1.{member:04d}")))
        except StoreError as error:
            reads.append(str(error))
    failed = [read for read in reads if isinstance(read, str)]
    assert failed
    assert all(read.startswith("cannot read the history store test-0: ") for read in failed)
    assert {read for read in reads if isinstance(read, int)} == {2000 // MEMBERS}
    store.close()


def test_a_store_whose_current_file_is_garbage_does_not_open(tmp_path: Path) -> None:
    _filled_store(tmp_path / "store").close()
    (tmp_path / "store" / "CURRENT").write_bytes(b"MANIFEST-999999\n")

    with pytest.raises(StoreError, match="cannot open the history store test-0"):
        PartitionStore(tmp_path / "store", StoreMemory(), name="test-0")
