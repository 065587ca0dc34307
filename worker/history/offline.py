"""Claim history without Kafka (`claims-worker validate`): the claims of a file judged in file order.

The same stage as the worker's (`worker.history.stage.HistoryStage`), on one store: in memory (history lasts one
run; the member key's secret is then random), or in a directory (`--history-dir`), where it lasts from run to run
and needs `CLAIMS_HISTORY_KEY` so that members are keyed the same way each time. No changelog is written.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from pydantic import SecretStr

from rules.engine import RuleEngine
from worker.evaluator import Deferred, Evaluation
from worker.history.keys import MemberKeyer
from worker.history.stage import HistoryStage
from worker.history.store import PartitionStore, StoreMemory

OFFLINE_TOPIC = "offline"


class _LineRecord(NamedTuple):
    """A deferred claim of line `offset` of the file, as the stage reads repartition records."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class OfflineHistory:
    """History for one `validate` run. Use as a context manager (the store is closed at the end)."""

    def __init__(
        self, engine: RuleEngine, *, retention_days: int, directory: Path | None, secret: SecretStr | None
    ) -> None:
        """Raises ValueError when `directory` is given without `secret`; `StoreError` when the store cannot open."""
        if directory is not None and secret is None:
            raise ValueError("a history directory needs the member-key secret (CLAIMS_HISTORY_KEY)")
        self.keyer = MemberKeyer(secret if secret is not None else SecretStr(secrets.token_hex(32)))
        self._store = PartitionStore(directory, StoreMemory(), name=f"{OFFLINE_TOPIC}-0")
        self._stage = HistoryStage(
            engine=engine, changelog_topic=OFFLINE_TOPIC, stores={0: self._store}, retention_days=retention_days
        )
        self._line = self._store.checkpoint.source_offset

    def judge(self, deferred: Deferred) -> Evaluation:
        """The verdict of a deferred claim against the history so far; the claim is recorded at once."""
        record = _LineRecord(OFFLINE_TOPIC, 0, self._line, -1, deferred.member_key.encode(), deferred.value, ())
        self._line += 1
        batch = self._stage.process([record])
        self._stage.commit(batch, {})
        [(_, evaluation)] = batch.processed
        return evaluation

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> OfflineHistory:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OfflineHistory store={self._store!r}>"
