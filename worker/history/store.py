"""The local store of claim history: one RocksDB database (rocksdict) per owned repartition partition.

The changelog topic is the durable copy; the store is a cache of it that survives restarts, so that a worker
only reads the changelog from where its store left off (`StoreCheckpoint`). Writes therefore skip RocksDB's
write-ahead log (as Kafka Streams' stores do): a crash loses the last writes *and* the checkpoint written with
them in the same batch, and the restore reads them again.

Key space (first byte): `e` + entry key -> the entry (`schemas.history.HistoryLine` JSON, as on the changelog);
`i` + service date + NUL + entry key -> nothing (the expiry index: entries by service date); `~checkpoint` -> the
checkpoint. `path=None` keeps the database in memory (`claims-worker validate` without `--history-dir`, tests).

Chosen over sqlite3 by measurement (1,000,000 entries of 220 bytes, 2 cores, see the README): RocksDB wrote
160,000 entries/s against sqlite3's 28,000 (the restore target is 50,000/s) and took 39 MB of disk against 313 MB;
a member's entries are one prefix scan in both (23-30 us for 10 entries, warm).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from rocksdict import (
    BlockBasedOptions,
    Cache,
    Env,
    Options,
    Rdict,
    RdictIter,
    ReadOptions,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

from worker.history.keys import member_prefix

_ENTRY = b"e"
_INDEX = b"i"
_CHECKPOINT = b"~checkpoint"
_SEPARATOR = b"\x00"


class StoreError(Exception):
    """The store cannot be opened or read (corrupt, or written by something else): wipe it and rebuild."""


class StoreCheckpoint(NamedTuple):
    """How far the store reflects its partition: next offsets of the changelog and of the repartition topic."""

    changelog_offset: int  # the next changelog offset to apply
    source_offset: int  # the store holds the effects of repartition records below this offset

    @classmethod
    def decode(cls, raw: bytes) -> StoreCheckpoint:
        changelog, source = raw.split(b":")
        return cls(int(changelog), int(source))

    def encode(self) -> bytes:
        return b"%d:%d" % (self.changelog_offset, self.source_offset)


EMPTY_CHECKPOINT = StoreCheckpoint(0, 0)


class StoreMemory:
    """Memory shared by every store of a worker: one block cache and one write-buffer budget, in bytes."""

    def __init__(self, *, cache_bytes: int = 16 << 20, write_buffer_bytes: int = 16 << 20) -> None:
        self.cache = Cache(cache_bytes)
        self.write_buffers = WriteBufferManager.new_write_buffer_manager_with_cache(
            write_buffer_bytes, False, self.cache
        )

    def options(self, *, in_memory: bool) -> Options:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_block_cache(self.cache)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.write_buffers)
        options.set_write_buffer_size(4 << 20)  # small memtables: a worker owns several partitions
        options.set_max_write_buffer_number(2)
        if in_memory:
            options.set_env(Env.mem_env())
        return options


class PartitionStore:
    """The history entries of one repartition partition. Not thread-safe: the loop's thread uses it."""

    def __init__(self, path: Path | None, memory: StoreMemory, *, name: str) -> None:
        """Open (or create) the store at `path`, or an empty one in memory. Raises `StoreError`."""
        self.path = path
        self.name = name
        self._in_memory = path is None
        self._memory = memory
        location = f"/claims-history-memory/{name}" if path is None else str(path)
        db: Rdict | None = None
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            db = Rdict(location, memory.options(in_memory=self._in_memory))
            raw = db.get(_CHECKPOINT)
            self.checkpoint = EMPTY_CHECKPOINT if raw is None else StoreCheckpoint.decode(raw)
        except Exception as error:  # noqa: BLE001 - rocksdict raises plain exceptions for a corrupt store
            reason = f"{type(error).__name__}: {error}"
            if db is not None:  # opened, then failed to read: release its lock, the store is wiped and reopened
                _close_quietly(db)
                del db
            raise StoreError(f"cannot open the history store {name}: {reason}") from None
        self._db = db
        self._write_options = WriteOptions()
        # A property at run time (rocksdict's stub declares a method).
        setattr(self._write_options, "disable_wal", True)  # noqa: B010

    def member_entries(self, member_key: str) -> list[tuple[bytes, bytes]]:
        """(entry key, entry JSON) of every entry of `member_key`, in key order."""
        prefix = _ENTRY + member_prefix(member_key)
        found = []
        iterator = self._db.iter()
        iterator.seek(prefix)
        while iterator.valid():
            key = iterator.key()
            if not key.startswith(prefix):
                break
            found.append((key[1:], iterator.value()))
            iterator.next()
        error = _iteration_error(iterator)
        del iterator  # an exception's frames must not keep the database open: it is reopened to be rebuilt
        if error is not None:
            raise StoreError(f"cannot read the history store {self.name}: {error}")
        return found

    def serviced_before(self, day: dt.date, *, limit: int) -> list[bytes]:
        """Entry keys of entries whose service date is before `day`, oldest first, at most `limit`."""
        upper = _INDEX + day.isoformat().encode()
        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(upper)
        found: list[bytes] = []
        iterator = self._db.iter(read_options)
        iterator.seek(_INDEX)
        while iterator.valid() and len(found) < limit:
            key = iterator.key()
            found.append(key[len(_INDEX) + 11 :])  # after "i", the 10-character date and the separator
            iterator.next()
        error = _iteration_error(iterator)
        del iterator
        if error is not None:
            raise StoreError(f"cannot read the history store {self.name}: {error}")
        return found

    def apply(self, changes: Iterable[tuple[bytes, bytes | None]], checkpoint: StoreCheckpoint) -> None:
        """Write entries (None deletes) and the checkpoint, atomically. Raises `StoreError`."""
        batch = WriteBatch(raw_mode=True)
        for key, value in changes:
            index_key = _INDEX + _service_date_of(key) + _SEPARATOR + key
            if value is None:
                batch.delete(_ENTRY + key)
                batch.delete(index_key)
            else:
                batch.put(_ENTRY + key, value)
                batch.put(index_key, b"")
        batch.put(_CHECKPOINT, checkpoint.encode())
        try:
            self._db.write(batch, self._write_options)
        except Exception as error:  # noqa: BLE001 - see __init__
            raise StoreError(f"cannot write the history store {self.name}: {type(error).__name__}") from None
        self.checkpoint = checkpoint

    def estimated_entries(self) -> int:
        """About how many entries the store holds (RocksDB's estimate; each entry has one index key)."""
        keys = self._db.property_int_value("rocksdb.estimate-num-keys") or 0
        return max(0, (keys - 1) // 2)

    def size_bytes(self) -> int:
        """Bytes on disk (0 in memory)."""
        if self.path is None or not self.path.exists():
            return 0
        return sum(file.stat().st_size for file in self.path.iterdir() if file.is_file())

    def close(self) -> None:
        """Flush the memtables (no write-ahead log would replay them) and close."""
        try:
            if not self._in_memory:
                self._db.flush()
            self._db.close()
        except Exception:  # RocksDB's memory environment cannot sync a WAL on close; nothing is lost there
            if not self._in_memory:
                raise

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"<PartitionStore {self.name} at {where} checkpoint={tuple(self.checkpoint)}>"


def _close_quietly(db: Rdict) -> None:
    with contextlib.suppress(Exception):  # a store that failed to open is wiped next; its close may fail too
        db.close()


def _iteration_error(iterator: RdictIter) -> str | None:
    """Why the iteration ended early, or None. RocksDB stops an iterator at a corrupt block (`valid()` turns
    false) and says so only in its status: without this check a member's history would read short."""
    try:
        iterator.status()
    except Exception as error:  # noqa: BLE001 - rocksdict raises plain exceptions
        return f"{type(error).__name__}: {error}"
    return None


def _service_date_of(entry_key: bytes) -> bytes:
    """The ISO service date inside an entry key (its third part), without decoding the key: restores apply
    tens of thousands of entries a second. Raises ValueError for a key that is not an entry key."""
    parts = entry_key.split(_SEPARATOR, 3)
    if len(parts) != 4 or len(parts[2]) != 10:
        raise ValueError("not a history entry key")
    return parts[2]


def is_entry_key(key: bytes | None) -> bool:
    """Whether `key` has the shape of an entry key (restores skip anything else on the changelog)."""
    if key is None:
        return False
    parts = key.split(_SEPARATOR, 3)
    return len(parts) == 4 and len(parts[2]) == 10


def wipe_store(path: Path) -> None:
    """Remove a store's files (it is rebuilt from the changelog)."""
    shutil.rmtree(path, ignore_errors=True)
