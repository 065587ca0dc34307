"""The claim files `convert`, `validate` and `publish` read: claim.submitted JSONL, X12 837P/837I or FHIR R4.

`open_claim_input` turns a path (or `-`) into either the JSONL lines (streamed, exactly as these commands always
read them) or the claim records converted from an X12 or FHIR file. A file that cannot be converted is reported on
stderr (coded reason; for X12 the implementation-guide errors by segment, element and code) and raises
`InputRejectedError`, whose exit code is 2: nothing is printed, validated or published from it.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from adapters.convert import (
    DEFAULT_MAX_INPUT_BYTES,
    DETECTION_BYTES,
    InputFormat,
    convert_bytes,
    detect_format,
)
from adapters.errors import ConversionError, FailureCode
from adapters.fhir import DEFAULT_MAX_BUNDLE_ENTRIES
from adapters.records import ClaimRecord
from adapters.x12.maps import X12Maps
from adapters.x12.reader import X12Report
from worker.commands.flags import number_flag
from worker.exit_codes import ExitCode


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every command reading claim files shares."""
    parser.add_argument(
        "--input-format",
        choices=[choice.value for choice in InputFormat],
        default=InputFormat.AUTO.value,
        help="what the file holds (default: %(default)s: an ISA segment is X12, a resourceType FHIR, else JSONL)",
    )
    parser.add_argument(
        "--max-input-bytes",
        type=number_flag(int, ge=1),
        default=DEFAULT_MAX_INPUT_BYTES,
        metavar="N",
        help="an X12 or FHIR file larger than this is refused (default: %(default)s)",
    )
    parser.add_argument(
        "--max-bundle-entries",
        type=number_flag(int, ge=1),
        default=DEFAULT_MAX_BUNDLE_ENTRIES,
        metavar="N",
        help="a FHIR Bundle with more entries is refused (default: %(default)s)",
    )
    parser.add_argument(
        "--write-999",
        type=Path,
        default=None,
        metavar="FILE",
        help="X12 input: write pyx12's 999 implementation acknowledgement of the file here",
    )


@dataclass(frozen=True, slots=True)
class InputOptions:
    input_format: InputFormat
    max_input_bytes: int
    max_bundle_entries: int
    write_999: Path | None
    keep_invalid_x12: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> InputOptions:
        return cls(
            input_format=InputFormat(args.input_format),
            max_input_bytes=args.max_input_bytes,
            max_bundle_entries=args.max_bundle_entries,
            write_999=args.write_999,
            keep_invalid_x12=bool(getattr(args, "accept_x12_errors", False)),
        )


class InputRejectedError(Exception):
    """The input was reported on stderr and nothing may be made from it; exit with `exit_code`."""

    def __init__(self, exit_code: ExitCode) -> None:
        super().__init__(exit_code.name)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class JsonLines:
    """claim.submitted v1 JSONL: the raw lines (with their line endings), streamed."""

    lines: Iterable[bytes]


@dataclass(frozen=True, slots=True)
class ConvertedRecords:
    """Claim records converted from an X12 or FHIR file, in file order."""

    records: tuple[ClaimRecord, ...]


ClaimInput = JsonLines | ConvertedRecords


def open_claim_input(
    path: str, stream: BinaryIO, options: InputOptions, *, command: str, maps: X12Maps | None = None
) -> ClaimInput:
    """Read `stream` (the open file `path`, or stdin for `-`) as the format `options` names or the content shows.

    Raises InputRejectedError (after reporting on stderr) for a file that cannot be converted or breaks the X12
    implementation guide (unless `options.keep_invalid_x12`); OSError as reading raises it.
    """
    head = stream.read(DETECTION_BYTES)
    resolved = detect_format(head) if options.input_format is InputFormat.AUTO else options.input_format
    if resolved is InputFormat.JSON:
        return JsonLines(_rejoined(head, stream))
    data = head + stream.read(max(0, options.max_input_bytes + 1 - len(head)))
    try:
        if len(data) > options.max_input_bytes:
            raise ConversionError(
                FailureCode.TOO_LARGE,
                f"the file is over {options.max_input_bytes} bytes (--max-input-bytes)",
            )
        conversion = convert_bytes(
            data,
            resolved,
            maps=maps,
            max_bundle_entries=options.max_bundle_entries,
            keep_invalid_x12=options.keep_invalid_x12,
        )
    except ConversionError as error:
        print(f"claims-worker {command}: {_shown(path)}: {error.code.value}: {error.message}", file=sys.stderr)
        raise InputRejectedError(ExitCode.USAGE) from None
    if conversion.x12_report is not None:
        _report_x12(conversion.x12_report, path, options, command)
    return ConvertedRecords(conversion.records)


def _report_x12(report: X12Report, path: str, options: InputOptions, command: str) -> None:
    if options.write_999 is not None:
        try:
            options.write_999.write_text(report.acknowledgement_999(), encoding="ascii", errors="replace")
        except OSError as error:
            print(f"claims-worker {command}: cannot write {options.write_999}: {error.strerror}", file=sys.stderr)
            raise InputRejectedError(ExitCode.USAGE) from None
    if report.valid:
        return
    issues = report.issues
    if options.keep_invalid_x12:
        print(
            f"claims-worker {command}: {_shown(path)}: warning: {len(issues)} X12 implementation guide errors; "
            "converting the segments the guide places (--accept-x12-errors):",
            file=sys.stderr,
        )
    else:
        print(
            f"claims-worker {command}: {_shown(path)}: {FailureCode.X12_INVALID.value}: the file breaks the X12 "
            f"implementation guide ({len(issues)} errors, listed as in its 999); nothing was converted:",
            file=sys.stderr,
        )
    for issue in issues:
        print(f"  {issue.render()}", file=sys.stderr)
    if not options.keep_invalid_x12:
        raise InputRejectedError(ExitCode.USAGE)


def _shown(path: str) -> str:
    return "stdin" if path == "-" else path


def _rejoined(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """The lines of `head` followed by the rest of `stream`, the line cut by the end of `head` joined again."""
    pending = b""
    for line in io.BytesIO(head):
        if line.endswith(b"\n"):
            yield pending + line
            pending = b""
        else:
            pending += line
    for line in stream:
        if pending:
            line = pending + line  # noqa: PLW2901 - the first line of the rest completes the cut one
            pending = b""
        yield line
    if pending:
        yield pending
