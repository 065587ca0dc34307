"""Placeholder for `claims-worker` subcommand module `topics`: implemented by its issue."""

from __future__ import annotations

import argparse
import sys

from worker.exit_codes import ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    del args
    print("not implemented yet", file=sys.stderr)
    return ExitCode.FAILURE
