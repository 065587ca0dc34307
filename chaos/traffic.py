"""Input for the scenarios: claims cycled from `examples/claims.jsonl` with unique ids, and a paced publisher.

The example lines mix passing, failing, not-applicable, schema-failing and unreadable claims, so every output
topic (pass, fail, dead letter) takes part. The publisher is an idempotent `acks=all` producer with a generous
delivery timeout, so it rides out the broker restarts and outages of the scenarios; what counts as input is
what the input topic holds afterwards (the ledger reads it back), not what the publisher believes it sent.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from kafka import KafkaProducer

from chaos.broker import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "claims.jsonl"
# Longer than any outage a scenario injects: a send fails only if the broker stays away for this long.
DELIVERY_TIMEOUT_MS = 300_000


def claims(count: int, run_id: str, examples: Path = EXAMPLES) -> list[tuple[bytes | None, bytes]]:
    """`count` (key, value) records cycling through the example lines; JSON claims get unique claim/event ids."""
    templates = [line.strip() for line in examples.read_bytes().splitlines() if line.strip()]
    records: list[tuple[bytes | None, bytes]] = []
    for index in range(count):
        line = templates[index % len(templates)]
        try:
            document = json.loads(line)
        except ValueError:
            records.append((None, line))
            continue
        if not isinstance(document, dict) or not isinstance(document.get("claim_id"), str):
            records.append((None, line))
            continue
        claim_id = f"{document['claim_id']}-{run_id}-{index}"
        document["claim_id"] = claim_id
        document["event_id"] = f"evt-{run_id}-{index}"
        records.append((claim_id.encode(), json.dumps(document, separators=(",", ":")).encode()))
    return records


class Publisher:
    """Sends `records` to `topic` at about `rate_per_s` on a thread; `join()` waits for every acknowledgement."""

    def __init__(
        self, bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]], rate_per_s: float
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._records = records
        self._rate = rate_per_s
        self.sent = 0
        self.failed = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-publisher", daemon=True)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            producer = KafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id="chaos-publisher",
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                request_timeout_ms=10_000,
                delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
                max_block_ms=DELIVERY_TIMEOUT_MS,
                reconnect_backoff_max_ms=1_000,
            )
        except Exception as error:  # noqa: BLE001 - reported by join()
            self.error = error
            return
        futures = []
        try:
            began = time.monotonic()
            chunk = max(1, int(self._rate / 20))  # 20 sends a second keeps the pace smooth
            for start in range(0, len(self._records), chunk):
                for key, value in self._records[start : start + chunk]:
                    futures.append(producer.send(self._topic, key=key, value=value))
                ahead_s = (start + chunk) / self._rate - (time.monotonic() - began)
                if ahead_s > 0:
                    time.sleep(ahead_s)
            producer.flush(timeout=DELIVERY_TIMEOUT_MS / 1000)
            for future in futures:
                if future.failed():
                    self.failed += 1
                else:
                    self.sent += 1
        except Exception as error:  # noqa: BLE001 - reported by join()
            self.error = error
        finally:
            producer.close(timeout=10)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"the publisher did not finish within {timeout_s:.0f}s")
        if self.error is not None:
            raise RuntimeError(f"the publisher failed: {type(self.error).__name__}: {self.error}")

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()
