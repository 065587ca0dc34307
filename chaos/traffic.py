"""Input for the scenarios: claims cycled from `examples/claims.jsonl` with unique ids, claim-history traffic, and
a paced publisher.

- `claims`: the example lines mix passing, failing, not-applicable, schema-failing and unreadable claims, so every
  output topic (pass, fail, dead letter) takes part. Each generated claim has a member of its own: claim history
  is on, and thousands of claims of the same few members would give each member thousands of history entries.
- `history_claims`: few members, each with a dose sequence (J9353 every 21 days from line 1, the worked example;
  J9022 every 28 days under a 336-unit authorization from line 7) mixed with what history must catch or handle:
  exact duplicates under new claim ids, suspect duplicates, doses 10 days after the previous one, replacements
  (frequency code 7), voids (8), replacements of unknown originals, and the same claim resent.

The publisher is an idempotent `acks=all` producer with a generous
delivery timeout, so it rides out the broker restarts and outages of the scenarios; what counts as input is
what the input topic holds afterwards (the ledger reads it back), not what the publisher believes it sent.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
        patient = document.get("patient")
        if isinstance(patient, dict) and "member_id" in patient:
            patient["member_id"] = f"MBR-CHAOS-{run_id}-{index}"
        records.append((claim_id.encode(), json.dumps(document, separators=(",", ":")).encode()))
    return records


# --- claim-history traffic ----------------------------------------------------------------------------------------

J9353_EXAMPLE_LINE = 1  # examples/claims.jsonl, 1-based: J9353 x 210 + J9353-JW x 40 + 96413, Medicare
J9022_EXAMPLE_LINE = 7  # J9022 x 168 (1680 mg q4w) + 96413, commercial, authorization of 336 units
J9353_INTERVAL_DAYS = 21  # the label's every 3 weeks (the rules allow 18)
J9022_INTERVAL_DAYS = 28  # line 7's every 4 weeks (the rules allow 12)
TOO_SOON_DAYS = 10  # below both minimums
FILED_AFTER_DAYS = 5
J9353_FIRST_DOSE = dt.date(2026, 3, 2)
J9022_FIRST_DOSE = dt.date(2026, 6, 1)
# Every fifth member is a J9022 patient with an authorization.
J9022_EVERY = 5
# What each claim of a member is, with its weight; the first claim of a member is always a dose.
HISTORY_MIX: tuple[tuple[str, int], ...] = (
    ("dose", 40),
    ("exact_duplicate", 14),
    ("too_soon", 10),
    ("replacement", 10),
    ("void", 7),
    ("suspect_duplicate", 6),
    ("resend", 6),
    ("unknown_original", 3),
    ("replacement_of_void", 4),
)
# A member's claims span at most this many days: far inside history's retention (over a year by default), so
# that expiry never decides a verdict (the oracle's fold has no clock).
MAX_SPAN_DAYS = 300


def history_claims(
    count: int, run_id: str, rng: random.Random, *, claims_per_member: int = 20, examples: Path = EXAMPLES
) -> list[tuple[bytes | None, bytes]]:
    """`count` claim records for claim history: `count // claims_per_member` members (at least one), each
    member's claims in its own order, the members interleaved at random. Claim and event ids are unique, except
    that a resend repeats an earlier claim (same claim id, new event id)."""
    lines = examples.read_text(encoding="utf-8").splitlines()
    j9353 = json.loads(lines[J9353_EXAMPLE_LINE - 1])
    j9022 = json.loads(lines[J9022_EXAMPLE_LINE - 1])
    members = max(1, count // claims_per_member)
    sizes = [count // members + (1 if number < count % members else 0) for number in range(members)]
    queues: list[list[dict[str, Any]]] = []
    for number, size in enumerate(sizes):
        j9022_patient = number % J9022_EVERY == J9022_EVERY - 1
        member = _Member(
            run_id,
            number,
            j9022 if j9022_patient else j9353,
            interval_days=J9022_INTERVAL_DAYS if j9022_patient else J9353_INTERVAL_DAYS,
            first_dose=(J9022_FIRST_DOSE if j9022_patient else J9353_FIRST_DOSE) + dt.timedelta(rng.randrange(14)),
        )
        queues.append([member.next_claim(rng) for _ in range(size)])
    records: list[tuple[bytes | None, bytes]] = []
    pending = [queue[::-1] for queue in queues if queue]
    while pending:
        queue = rng.choice(pending)
        document = queue.pop()
        if not queue:
            pending.remove(queue)
        document["event_id"] = f"evt-h-{run_id}-{len(records)}"
        records.append((document["claim_id"].encode(), json.dumps(document, separators=(",", ":")).encode()))
    return records


class _Member:
    """One patient's claims, in the order the member's provider files them."""

    def __init__(
        self, run_id: str, number: int, template: dict[str, Any], *, interval_days: int, first_dose: dt.date
    ) -> None:
        self._run_id = run_id
        self._number = number
        self._interval = dt.timedelta(days=interval_days)
        self._template = copy.deepcopy(template)
        self._template["patient"]["member_id"] = f"MBR-H-{run_id}-{number}"
        authorization = self._template.get("prior_authorization")
        if authorization is not None:  # valid over the member's whole sequence
            authorization["number"] = f"PA-H-{run_id}-{number}"
            authorization["valid_from"] = (first_dose - dt.timedelta(days=7)).isoformat()
            authorization["valid_to"] = (first_dose + dt.timedelta(days=MAX_SPAN_DAYS + 30)).isoformat()
        self._first_dose = first_dose
        self._last_dose: dt.date | None = None
        self._filed: list[dict[str, Any]] = []  # every claim so far (the ones a later claim may refer to)
        self._claims = 0

    def next_claim(self, rng: random.Random) -> dict[str, Any]:
        kinds, weights = zip(*HISTORY_MIX, strict=True)
        kind = "dose" if not self._filed else rng.choices(kinds, weights)[0]
        builders: dict[str, Callable[[random.Random], dict[str, Any]]] = {
            "dose": self._dose,
            "too_soon": self._too_soon,
            "exact_duplicate": self._exact_duplicate,
            "suspect_duplicate": self._suspect_duplicate,
            "replacement": self._replacement,
            "replacement_of_void": self._replacement_of_void,
            "void": self._void,
            "resend": self._resend,
            "unknown_original": self._unknown_original,
        }
        document = builders[kind](rng)
        self._filed.append(document)
        return copy.deepcopy(document)

    def _new_id(self) -> str:
        self._claims += 1
        return f"H-{self._run_id}-{self._number}-{self._claims}"

    def _on(self, day: dt.date) -> dict[str, Any]:
        if (day - self._first_dose).days > MAX_SPAN_DAYS:
            day = self._first_dose + dt.timedelta(days=MAX_SPAN_DAYS)
        document = copy.deepcopy(self._template)
        document["claim_id"] = self._new_id()
        document["submitted_on"] = (day + dt.timedelta(days=FILED_AFTER_DAYS)).isoformat()
        for line in document["lines"]:
            line["service_date"] = day.isoformat()
            administration = line.get("administration")
            if administration is not None:
                for moment in ("started_at", "ended_at"):
                    administration[moment] = day.isoformat() + administration[moment][10:]
        return document

    def _dose(self, rng: random.Random) -> dict[str, Any]:
        del rng
        self._last_dose = self._first_dose if self._last_dose is None else self._last_dose + self._interval
        return self._on(self._last_dose)

    def _too_soon(self, rng: random.Random) -> dict[str, Any]:
        del rng
        return self._on((self._last_dose or self._first_dose) + dt.timedelta(days=TOO_SOON_DAYS))

    def _earlier(self, rng: random.Random) -> dict[str, Any]:
        return rng.choice(self._filed)

    def _copy_of_earlier(self, rng: random.Random, earlier: dict[str, Any] | None = None) -> dict[str, Any]:
        document = copy.deepcopy(earlier or self._earlier(rng))
        document["claim_id"] = self._new_id()
        document.pop("frequency_code", None)
        document.pop("original_claim_id", None)
        return document

    def _exact_duplicate(self, rng: random.Random) -> dict[str, Any]:
        return self._copy_of_earlier(rng)

    def _suspect_duplicate(self, rng: random.Random) -> dict[str, Any]:
        document = self._copy_of_earlier(rng)
        document["lines"][0]["units"] -= 10
        return document

    def _referring(self, rng: random.Random, frequency_code: str, original: str | None = None) -> dict[str, Any]:
        earlier = self._earlier(rng)
        document = self._copy_of_earlier(rng, earlier)  # a corrected (or cancelled) copy of the claim it names
        document["frequency_code"] = frequency_code
        document["original_claim_id"] = original or earlier["claim_id"]
        return document

    def _replacement(self, rng: random.Random) -> dict[str, Any]:
        return self._referring(rng, "7")

    def _void(self, rng: random.Random) -> dict[str, Any]:
        return self._referring(rng, "8")

    def _replacement_of_void(self, rng: random.Random) -> dict[str, Any]:
        # A replacement that names a claim voided before (or never recorded): history no longer knows it.
        voids = [claim for claim in self._filed if claim.get("frequency_code") == "8"]
        if not voids:
            return self._replacement(rng)
        return self._referring(rng, "7", original=rng.choice(voids)["original_claim_id"])

    def _resend(self, rng: random.Random) -> dict[str, Any]:
        return copy.deepcopy(self._earlier(rng))

    def _unknown_original(self, rng: random.Random) -> dict[str, Any]:
        return self._referring(rng, "7", original=f"H-{self._run_id}-{self._number}-never-{self._claims}")


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
