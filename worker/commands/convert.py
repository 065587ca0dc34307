"""`claims-worker convert FILE`: print the claim.submitted v1 events an X12 837P/837I or FHIR R4 file holds.

One JSON event per line on stdout, one per claim (CLM, or FHIR Claim), in file order. JSONL input is printed as
it is. A file that cannot be converted, or an X12 file that breaks the implementation guide, is reported on stderr
(for X12 its 999 errors by segment, element and code) and exits 2 with nothing on stdout; `--write-999 FILE`
writes pyx12's 999 acknowledgement.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from worker.commands.inputs import (
    ConvertedRecords,
    InputOptions,
    InputRejectedError,
    add_input_arguments,
    open_claim_input,
)
from worker.commands.validate import silence_stdout
from worker.exit_codes import ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="FILE", help="X12 837P/837I, FHIR R4 Claim or Bundle, or JSONL; - is stdin")
    add_input_arguments(parser)
    parser.add_argument(
        "--accept-x12-errors",
        action="store_true",
        help="convert an X12 file that breaks the implementation guide anyway (errors on stderr, exit 0); "
        "segments the guide cannot place are skipped",
    )


def run(args: argparse.Namespace) -> int:
    options = InputOptions.from_args(args)
    try:
        stream = sys.stdin.buffer if args.input == "-" else Path(args.input).open("rb")  # noqa: SIM115
    except OSError as error:
        print(f"claims-worker convert: cannot read {args.input}: {error.strerror or error}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        claim_input = open_claim_input(args.input, stream, options, command="convert")
        out = sys.stdout.buffer
        if isinstance(claim_input, ConvertedRecords):
            for record in claim_input.records:
                out.write(record.value + b"\n")
        else:
            for line in claim_input.lines:
                out.write(line if line.endswith(b"\n") else line + b"\n")
        out.flush()
    except InputRejectedError as rejected:
        return rejected.exit_code
    except OSError as error:
        if isinstance(error, BrokenPipeError):
            silence_stdout()
            return ExitCode.FAILURE
        print(f"claims-worker convert: cannot read {args.input}: {error.strerror or error}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return ExitCode.OK
