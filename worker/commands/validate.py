"""`claims-worker validate [FILE|-]`: validate claims offline (no Kafka), from claim.submitted JSONL, an X12
837P/837I file or a FHIR R4 Claim/Bundle (`--input-format`, default auto: see `worker/commands/inputs.py`).

X12 and FHIR files are converted first (`claims-worker convert`); each converted claim is then validated as a JSONL
line would be, `input_line` being the claim's position in the file. A file that cannot be converted, or an X12 file
that breaks the implementation guide, is reported on stderr and exits 2 with no output.

JSONL input: one claim.submitted event per line (UTF-8 JSON). Output on stdout, one line per input line, in order:
the claim.validated event, or for input that cannot be read as a claim
`{"schema_version": 1, "dead_letter": true, "reason": ..., "error": ..., "input_line": n}`.
Blank (whitespace-only) lines are skipped without output: they carry no record, and a JSONL file may end
with one; every other line, however broken, gets exactly one output line.

`--format table` prints a human summary instead. In both formats the count line (`19 records: 5 pass, ...`)
goes to stderr, so stdout stays the JSONL stream. Exit status: 0 when every line was processed and none failed;
6 (RECORDS_FAILED) when every line was processed and at least one got a `fail` verdict or is a dead letter (like a
linter; `--exit-zero` gives 0 then); 3 (CONFIG) for an invalid payer policy file or policy directory; 2 (USAGE)
for an unreadable input file or one that cannot be converted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from rules.engine import PolicyError, RuleEngine, load_engine
from rules.history import default_retention_days
from schemas.parsing import DEFAULT_MAX_BYTES
from schemas.verdict import ClaimValidated, utc_now
from worker.commands.flags import number_flag, setting_flag
from worker.commands.inputs import (
    ConvertedRecords,
    InputOptions,
    InputRejectedError,
    add_input_arguments,
    open_claim_input,
)
from worker.evaluator import DeadLettered, Deferred, Evaluation, Verdict, evaluate_claim_bytes
from worker.exit_codes import ExitCode
from worker.history.offline import OfflineHistory
from worker.history.store import StoreError
from worker.settings import ConfigError, HistorySettings, load_history_settings
from worker.verdict_table import VerdictTable

PROGRESS_EVERY_LINES = 10_000
_WRITE_BATCH_LINES = 256


def _timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {text!r}") from None
    if value.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"timestamp needs a UTC offset (e.g. {text}Z or {text}+00:00)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        nargs="?",
        default="-",
        help="JSONL file of claim.submitted events (blank lines are skipped), X12 837P/837I, or FHIR R4 Claim or "
        "Bundle; - or nothing reads stdin",
    )
    add_input_arguments(parser)
    parser.add_argument(
        "--accept-x12-errors",
        action="store_true",
        help="validate the claims of an X12 file that breaks the implementation guide anyway (errors on stderr)",
    )
    parser.add_argument(
        "--format", choices=("jsonl", "table"), default="jsonl", help="output format (default: %(default)s)"
    )
    parser.add_argument(
        "--payer-policy-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="YAML payer policies that override the shipped defaults (format of rules/policy/payers.yaml)",
    )
    parser.add_argument(
        "--policy-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="CMS MUE/PTP tables written by `claims-worker policy import-mue|import-ptp`; overrides "
        "CLAIMS_POLICY_DIR (default: unset, the MUE and PTP rules do not run)",
    )
    parser.add_argument(
        "--validated-at",
        type=_timestamp,
        default=None,
        metavar="TIMESTAMP",
        help=(
            "validation timestamp written in every verdict, ISO 8601 with offset, for reproducible output; "
            "also the filing date of claims without submitted_on (default: the time the run starts, UTC)"
        ),
    )
    parser.add_argument(
        "--max-bytes",
        type=setting_flag("max_record_bytes"),
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help="a line longer than this is a too_large dead letter (default: %(default)s)",
    )
    parser.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when a record fails or is dead-lettered (default: exit 6 then)",
    )
    _add_history_arguments(parser)
    _add_progress_arguments(parser)


def _add_history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="judge each claim against the claims before it in the file, as the worker does across claims "
        "(duplicates, frequency, authorization); default: on unless CLAIMS_HISTORY=off",
    )
    parser.add_argument(
        "--history-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the history in DIR from run to run (needs CLAIMS_HISTORY_KEY); default: in memory, this run only",
    )


def _add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report progress on stderr (default: only when stderr is a terminal)",
    )
    parser.add_argument(
        "--progress-every",
        type=number_flag(int, ge=1),
        default=PROGRESS_EVERY_LINES,
        metavar="N",
        help="input lines between two progress reports (default: %(default)s)",
    )


def load_policy_of(command: str, args: argparse.Namespace) -> tuple[HistorySettings, RuleEngine] | None:
    """The settings and the engine from `--payer-policy-file` and `--policy-dir` (else CLAIMS_POLICY_DIR), as
    `validate` and `rules` load them; None, with the reason on stderr, when either is invalid (exit 3)."""
    try:
        settings = load_history_settings(policy_dir=args.policy_dir)
    except ConfigError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return None
    try:
        return settings, load_engine(args.payer_policy_file, settings.policy_dir)
    except PolicyError as error:
        print(f"{command}: invalid policy: {error}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    loaded = load_policy_of("claims-worker validate", args)
    if loaded is None:
        return ExitCode.CONFIG
    settings, engine = loaded
    # The engine's tables and the ICD-10-CM package's ~100k node objects live as long as the process: move them
    # out of the cyclic garbage collector's generations so that its full collections stop rescanning them
    # (measured: about 15% more claims per second).
    gc.freeze()
    try:
        history = _open_history(args, engine, settings)
    except (ConfigError, ValueError, StoreError) as error:
        print(f"claims-worker validate: {error}", file=sys.stderr)
        return ExitCode.CONFIG
    with history or contextlib.nullcontext():
        return _validate(args, engine, history)


def _open_history(args: argparse.Namespace, engine: RuleEngine, settings: HistorySettings) -> OfflineHistory | None:
    if not (settings.history_enabled if args.history is None else args.history):
        return None
    retention = settings.history_retention_days or default_retention_days(engine.policy)
    return OfflineHistory(engine, retention_days=retention, directory=args.history_dir, secret=settings.history_key)


def _validate(args: argparse.Namespace, engine: RuleEngine, history: OfflineHistory | None) -> int:
    validated_at: dt.datetime = args.validated_at or utc_now()
    show_progress = sys.stderr.isatty() if args.progress is None else bool(args.progress)
    counts = OutcomeCounts()
    try:
        stream = sys.stdin.buffer if args.input == "-" else Path(args.input).open("rb")  # noqa: SIM115
    except OSError as error:
        print(f"claims-worker validate: cannot read {args.input}: {error.strerror or error}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        claim_input = open_claim_input(args.input, stream, InputOptions.from_args(args), command="validate")
        if isinstance(claim_input, ConvertedRecords):
            numbered: Iterable[tuple[int, bytes]] = enumerate((record.value for record in claim_input.records), 1)
        else:
            numbered = enumerate(claim_input.lines, start=1)
        every = args.progress_every if show_progress else 0
        results = counts.counted(_results(numbered, engine, validated_at, args.max_bytes, every, history=history))
        if args.format == "table":
            _write_table(results, sys.stdout)
        else:
            _write_jsonl(results, sys.stdout.buffer)
        sys.stdout.flush()
        print(counts.summary(), file=sys.stderr, flush=True)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not every line was processed, but there is nobody to tell.
        silence_stdout()
        return ExitCode.FAILURE
    except InputRejectedError as rejected:
        return rejected.exit_code
    except OSError as error:
        print(f"claims-worker validate: cannot read {args.input}: {error.strerror or error}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if counts.failed_or_dead_lettered and not args.exit_zero:
        return ExitCode.RECORDS_FAILED
    return ExitCode.OK


_SUMMARY_KEYS = ("pass", "fail", "not_applicable", "dead_letter")


class OutcomeCounts:
    """How many results were pass, fail, not_applicable or dead letters, counted as they stream past."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def counted(self, results: Iterable[tuple[int, Evaluation]]) -> Iterator[tuple[int, Evaluation]]:
        for item in results:
            evaluation = item[1]
            if isinstance(evaluation, DeadLettered):
                self._counts["dead_letter"] += 1
            elif isinstance(evaluation, Verdict):
                self._counts[evaluation.outcome.value] += 1
            else:
                # Not offline: the claim history judges each deferred claim as soon as it is made.
                self._counts["deferred"] += 1
            yield item

    @property
    def failed_or_dead_lettered(self) -> bool:
        return bool(self._counts["fail"] or self._counts["dead_letter"])

    def summary(self) -> str:
        """e.g. `19 records: 5 pass, 10 fail, 2 not applicable, 2 dead letter`."""
        parts = ", ".join(f"{self._counts[key]} {key.replace('_', ' ')}" for key in _SUMMARY_KEYS)
        return f"{sum(self._counts.values())} records: {parts}"

    def __repr__(self) -> str:
        return f"<OutcomeCounts {dict(self._counts)}>"


def _results(
    numbered: Iterable[tuple[int, bytes]],
    engine: RuleEngine,
    validated_at: dt.datetime,
    max_bytes: int,
    progress_every: int,
    *,
    history: OfflineHistory | None = None,
) -> Iterator[tuple[int, Evaluation]]:
    """(input line number, result) per non-blank line; a progress line on stderr every `progress_every` lines."""
    started = time.perf_counter()
    number = 0
    for number, raw_line in numbered:
        raw = raw_line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        keyer = history.keyer if history is not None else None
        evaluation = evaluate_claim_bytes(engine, raw, validated_at=validated_at, max_bytes=max_bytes, history=keyer)
        if isinstance(evaluation, Deferred) and history is not None:
            evaluation = history.judge(evaluation)
        yield number, evaluation
        if progress_every and number % progress_every == 0:
            _progress(number, started)
    if progress_every and number % progress_every:
        _progress(number, started)


def _progress(lines: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    rate = lines / elapsed if elapsed > 0 else 0.0
    print(f"validate: {lines:,} lines, {rate:,.0f} lines/s", file=sys.stderr, flush=True)


def dead_letter_json(dead_letter: DeadLettered, input_line: int) -> bytes:
    """The offline output line for input that cannot be read as a claim."""
    document = {
        "schema_version": 1,
        "dead_letter": True,
        "reason": dead_letter.reason.value,
        "error": dead_letter.error,
        "input_line": input_line,
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def _write_jsonl(results: Iterable[tuple[int, Evaluation]], out: BinaryIO) -> None:
    batch: list[bytes] = []
    for number, result in results:
        if isinstance(result, DeadLettered):
            batch.append(dead_letter_json(result, number))
        else:
            batch.append(result.value)
        if len(batch) >= _WRITE_BATCH_LINES:
            batch.append(b"")
            out.write(b"\n".join(batch))
            batch.clear()
    if batch:
        batch.append(b"")
        out.write(b"\n".join(batch))


def _write_table(results: Iterable[tuple[int, Evaluation]], out: TextIO) -> None:
    table = VerdictTable(out)
    table.header()
    for number, evaluation in results:
        if isinstance(evaluation, DeadLettered):
            table.dead_letter(str(number), evaluation.reason.value, evaluation.error)
        else:
            # The table needs every finding's details, which only the verdict's JSON carries.
            table.verdict(str(number), ClaimValidated.model_validate_json(evaluation.value))


def silence_stdout() -> None:
    # Python flushes stdout again at exit; point it at /dev/null so that flush cannot raise a second time.
    try:
        devnull = Path("/dev/null").open("w")  # noqa: SIM115
    except OSError:
        return
    sys.stdout = devnull
