"""The verdict table people read: `claims-worker validate --format table`, `claims-worker consume --format table`
and `make run` (worker/demo.py) all print verdicts through `VerdictTable`, so they read alike.

One row per record: a label (input line, position or Kafka coordinates), the claim id and the outcome, with the
count of findings by severity (`pass (1 warning)`, `fail (2 errors)`). Under it, one block per finding: severity,
line (or `claim`), rule id and the predicted denial (`CARC CO-16  RARC N822`), then the message and the fix (the
finding's `provider_action`), wrapped; then the checks that could not run (`skipped`). Dead letters get one row
with their reason and error. Rows are written as they come, so a large file streams.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import TextIO

from schemas.verdict import ClaimValidated, Finding, Severity

_INDENT = " " * 8
_TEXT_INDENT = " " * 26
_WIDTH = 118
_SEVERITY_ORDER = (Severity.ERROR, Severity.WARNING, Severity.INFO)


def outcome_text(verdict: ClaimValidated) -> str:
    """The outcome with the findings counted by severity: `pass`, `pass (1 warning)`, `fail (2 errors, 1 info)`."""
    severities = Counter(finding.severity for finding in verdict.findings)
    counted = [
        f"{severities[severity]} {severity.value}{'' if severities[severity] == 1 else 's'}"
        for severity in _SEVERITY_ORDER
        if severities[severity]
    ]
    return f"{verdict.outcome.value} ({', '.join(counted)})" if counted else verdict.outcome.value


def denial_codes(finding: Finding) -> str:
    """The predicted denial: `CARC CO-16  RARC N822`, `CARC 5` without a group code, `` with neither."""
    parts = []
    if finding.carc:
        parts.append(
            f"CARC {finding.group_code.value}-{finding.carc}" if finding.group_code else f"CARC {finding.carc}"
        )
    if finding.rarc:
        parts.append("RARC " + " ".join(finding.rarc))
    return "  ".join(parts)


class VerdictTable:
    """Writes the table to `out`: `header()` once, then `verdict(...)` / `dead_letter(...)` per record.

    `label` names the first column (default `LINE`); `label_width` is its width in characters (default 6).
    """

    def __init__(self, out: TextIO, *, label: str = "LINE", label_width: int = 6) -> None:
        self._out = out
        self._label = label
        self._label_width = max(label_width, len(label))
        self.rows = 0

    def header(self) -> None:
        self._out.write(f"{self._label:>{self._label_width}}  {'CLAIM':<24} OUTCOME\n")

    def verdict(self, label: str, verdict: ClaimValidated) -> None:
        write = self._out.write
        write(f"{label:>{self._label_width}}  {verdict.claim_id:<24} {outcome_text(verdict)}\n")
        for finding in verdict.findings:
            where = f"line {finding.line_number}" if finding.line_number is not None else "claim"
            codes = denial_codes(finding)
            write(f"{_INDENT}{finding.severity.value:<8} {where:<8} {finding.rule_id}{'  ' + codes if codes else ''}\n")
            write(_wrapped(finding.message))
            write(_wrapped(f"fix: {finding.provider_action}"))
        for skipped in verdict.not_evaluated:
            write(f"{_INDENT}{'skipped':<8} {'':<8} {skipped.rule_id}: {skipped.reason}\n")
        self.rows += 1

    def dead_letter(self, label: str, reason: str, error: str, claim_id: str | None = None) -> None:
        shown = claim_id or "-"
        self._out.write(f"{label:>{self._label_width}}  {shown:<24} dead letter: {reason}: {error}\n")
        self.rows += 1

    def __repr__(self) -> str:
        return f"<VerdictTable label={self._label!r} rows={self.rows}>"


def _wrapped(text: str) -> str:
    return textwrap.fill(text, _WIDTH, initial_indent=_TEXT_INDENT, subsequent_indent=_TEXT_INDENT) + "\n"
