"""`claims-worker schema`: write (or check) the committed JSON Schema files of the event contracts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from schemas.export import SCHEMA_DIR, json_schema_documents, render, write_json_schemas
from worker.exit_codes import ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="output folder (default: %(default)s)")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files differ from the models"
    )


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    if args.check:
        stale = [
            name
            for name, document in json_schema_documents().items()
            if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != render(document)
        ]
        for name in stale:
            print(f"stale: {directory / name}", file=sys.stderr)
        return ExitCode.FAILURE if stale else ExitCode.OK
    for path in write_json_schemas(directory):
        print(path)
    return ExitCode.OK
