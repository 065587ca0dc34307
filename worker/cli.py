"""`claims-worker`: the command line. Each subcommand lives in its own module under `worker/commands/`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from worker import __version__

# (subcommand name, module under worker.commands); each module has `add_arguments(parser)` and `run(args)`.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("run", "run", "consume claims from Kafka, validate them and publish verdicts"),
    ("validate", "validate", "validate claims from a JSONL, X12 837P/837I or FHIR R4 file offline (no Kafka)"),
    ("convert", "convert", "convert an X12 837P/837I or FHIR R4 file to claim.submitted v1 events (JSONL)"),
    ("rules", "rules_list", "list every rule with its category, severity, CARC/RARC and source"),
    ("schema", "schema", "write the JSON Schema files of the event contracts"),
    ("publish", "publish", "publish claim events (JSONL, X12 or FHIR) to the input topic, keyed by claim id"),
    ("consume", "consume", "read verdicts or dead letters back from the pass, fail or dead-letter topic"),
    ("topics", "topics", "manage the worker's Kafka topics"),
    ("policy", "policy", "import CMS's MUE and NCCI PTP tables into the policy directory"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claims-worker", description="J9353 claim validation worker.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(f"worker.commands.{module_name}")
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(subparser)
        subparser.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `claims-worker` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    exit_code: int = args.handler(args)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
