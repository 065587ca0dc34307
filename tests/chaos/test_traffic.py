"""The harness' traffic: the example mix with a member per claim, and claim-history traffic that gives history
something to catch (and stays inside its retention, so that the oracle's fold needs no clock)."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter, defaultdict
from typing import Any

from chaos.traffic import MAX_SPAN_DAYS, claims, history_claims


def documents(records: list[tuple[bytes | None, bytes]]) -> list[dict[str, Any]]:
    return [json.loads(value) for _, value in records]


def test_each_generated_example_claim_has_a_member_of_its_own() -> None:
    members = [d["patient"]["member_id"] for d in documents(claims(60, "r1")[:16])]

    assert len(members) == len(set(members))


def test_history_traffic_has_few_members_and_unique_event_ids() -> None:
    found = documents(history_claims(400, "r1", random.Random(3)))

    assert len(found) == 400
    assert len({d["patient"]["member_id"] for d in found}) == 20
    assert len({d["event_id"] for d in found}) == 400


def test_history_traffic_repeats_a_claim_id_only_as_a_resend_of_the_same_claim() -> None:
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for document in documents(history_claims(400, "r1", random.Random(3))):
        by_id[document["claim_id"]].append({k: v for k, v in document.items() if k != "event_id"})

    repeated = [copies for copies in by_id.values() if len(copies) > 1]
    assert repeated
    assert all(copy == copies[0] for copies in repeated for copy in copies)


def test_history_traffic_holds_duplicates_replacements_voids_and_too_soon_doses() -> None:
    found = documents(history_claims(400, "r1", random.Random(3)))
    ids = {d["claim_id"] for d in found}

    kinds = Counter(d.get("frequency_code", "1") for d in found)
    assert kinds["7"] > 0
    assert kinds["8"] > 0
    assert any(d.get("original_claim_id") not in ids for d in found if d.get("frequency_code") == "7")
    content = Counter(json.dumps({k: v for k, v in d.items() if k not in ("claim_id", "event_id")}) for d in found)
    assert max(content.values()) > 1  # the same service under different claim ids
    dates = defaultdict(set)
    for d in found:
        dates[(d["patient"]["member_id"], d["lines"][0]["procedure_code"])].add(d["lines"][0]["service_date"])
    gaps = {
        (dt.date.fromisoformat(b) - dt.date.fromisoformat(a)).days
        for days in dates.values()
        for a, b in zip(sorted(days), sorted(days)[1:], strict=False)
    }
    assert 10 in gaps or 11 in gaps  # a dose too soon after another
    assert {"J9353", "J9022"} <= {d["lines"][0]["procedure_code"] for d in found}


def test_a_members_claims_span_less_than_history_keeps_entries() -> None:
    found = documents(history_claims(2000, "r1", random.Random(5), claims_per_member=100))
    days: dict[str, list[dt.date]] = defaultdict(list)
    for d in found:
        days[d["patient"]["member_id"]].extend(dt.date.fromisoformat(line["service_date"]) for line in d["lines"])

    assert max((max(v) - min(v)).days for v in days.values()) <= MAX_SPAN_DAYS
