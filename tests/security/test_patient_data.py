"""No patient data leaves the worker except inside the dead-letter copy of the original record.

Claims carry distinctive member ids and birth dates, in valid claims and in every way a claim can go wrong (so
that error messages get a chance to quote them). None of those values may appear in the worker's logs (at debug
level), its /metrics output, dead-letter headers (including `dlq.error`), output keys, or verdicts (whose findings
hold the error messages of schema failures). The dead-letter *value* is the original record: expected to hold them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.kafka_helpers import answers_by_input, hostile_topics, publish_large
from tests.worker import claims
from tests.worker.conftest import WorkerProcess, read_outputs
from worker.exit_codes import ExitCode

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

MEMBER_ID = "MBR-PHI-8c1f2e"
BIRTH_DATE = "1929-11-03"
IMPOSSIBLE_BIRTH_DATE = "1929-02-30"
SECRETS = (MEMBER_ID, BIRTH_DATE, IMPOSSIBLE_BIRTH_DATE, "19291103", "MBR-PHI")


def claim(claim_id: str, **patient: object) -> dict[str, object]:
    document = claims.claim_document(claim_id, member_id=f"{MEMBER_ID}-{claim_id}", birth_date=BIRTH_DATE)
    document["patient"].update(patient)
    return document


def encoded(document: object) -> bytes:
    return json.dumps(document).encode()


def inputs() -> list[tuple[str, bytes]]:
    """(claim id used as key, value): patient data in valid claims and in every kind of failure."""
    valid = [(f"P-{index}", encoded(claim(f"P-{index}"))) for index in range(5)]
    raw = encoded(claim("P-raw"))
    hostile = {
        "P-impossible-date": encoded(claim("P-impossible-date", birth_date=IMPOSSIBLE_BIRTH_DATE)),
        "P-date-as-number": encoded(claim("P-date-as-number", birth_date=19291103)),
        "P-member-too-long": encoded(claim("P-member-too-long", member_id=MEMBER_ID * 10)),
        "P-member-as-number": encoded(claim("P-member-as-number", member_id=19291103)),
        "P-patient-as-text": encoded({**claim("P-patient-as-text"), "patient": f"{MEMBER_ID} {BIRTH_DATE}"}),
        "P-truncated": raw[: raw.index(BIRTH_DATE.encode()) + 12],
        "P-not-utf8": raw.replace(b"Example Health", b"Example \xff Health"),
        "P-version-2": encoded({**claim("P-version-2"), "schema_version": 2}),
        "P-no-claim-id": encoded({key: value for key, value in claim("P-x").items() if key != "claim_id"}),
        "P-duplicate-member": raw.replace(b'"member_id"', b'"member_id": "' + MEMBER_ID.encode() + b'", "member_id"'),
        "P-too-large": encoded({**claim("P-too-large"), "notes": MEMBER_ID * 80_000}),
        "P-deep": raw[:-1] + b', "x": ' + b"[" * 50_000 + json.dumps(MEMBER_ID).encode() + b"]" * 50_000 + b"}",
        "P-nan": raw.replace(b'"weight_kg": 70.5', b'"weight_kg": NaN'),
    }
    return valid + list(hostile.items())


def test_patient_data_appears_in_no_log_metric_header_key_or_verdict(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given claims carrying distinctive patient data, valid and hostile
    topics = hostile_topics(new_topic)
    records = inputs()
    placed = publish_large(kafka_bootstrap, topics.input, [(key.encode(), value) for key, value in records])

    # When the worker processes them, logging at debug level
    worker = WorkerProcess(kafka_bootstrap, topics, tmp_path / "worker.log", log_level="debug")
    outputs = read_outputs(kafka_bootstrap, topics.outputs, expected=len(records), timeout_s=120)
    metrics = worker.scrape()
    assert worker.stop() == ExitCode.OK
    logs = worker.logs()

    # Then every input was answered (so every path ran), including dead letters of several reasons
    answers = answers_by_input(topics, outputs)
    assert set(answers) == set(placed)
    letters = [answer.output for found in answers.values() for answer in found if answer.kind == "dlq"]
    reasons = {letter.headers["dlq.reason"] for letter in letters}
    assert reasons >= {b"not_json", b"unsupported_schema_version", b"missing_claim_id", b"too_large"}
    assert "claim.dead_lettered" in logs  # the logs do talk about these records...
    # ...and none of what they say, publish or serve holds the patient data
    for secret in SECRETS:
        assert secret not in logs
        assert secret not in metrics
        for found in answers.values():
            for answer in found:
                assert all(secret.encode() not in value for value in answer.output.headers.values())
                assert secret.encode() not in (answer.output.key or b"")
                if answer.kind != "dlq":
                    assert secret.encode() not in answer.output.value
    # The dead-letter value is the original record: there the data is expected (and shows the search works)
    assert MEMBER_ID.encode() in b"".join(letter.value for letter in letters)
