"""Numeric flags of every `claims-worker` command are checked at parse time, like the settings they mirror (U3)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from tests.worker.conftest import REPO_ROOT
from worker.cli import build_parser
from worker.exit_codes import ExitCode

EXAMPLES = str(REPO_ROOT / "examples" / "claims.jsonl")

# (command line up to the flag, flag, a value out of bounds or not a number). Every numeric flag of every command
# is here; test_every_numeric_flag_is_listed_here keeps the list complete.
BAD_VALUES: list[tuple[tuple[str, ...], str, str]] = [
    (("validate", EXAMPLES), "--max-bytes", "-5"),
    (("validate", EXAMPLES), "--max-bytes", "0"),
    (("validate", EXAMPLES), "--progress-every", "0"),
    (("validate", EXAMPLES), "--max-input-bytes", "0"),
    (("validate", EXAMPLES), "--max-bundle-entries", "-1"),
    (("validate", EXAMPLES), "--max-bytes", "lots"),
    (("convert", EXAMPLES), "--max-input-bytes", "-1"),
    (("convert", EXAMPLES), "--max-bundle-entries", "0"),
    (("publish", EXAMPLES), "--max-input-bytes", "0"),
    (("publish", EXAMPLES), "--max-bundle-entries", "0"),
    (("publish", EXAMPLES), "--timeout-s", "0"),
    (("publish", EXAMPLES), "--timeout-s", "nan"),
    (("run",), "--metrics-port", "70000"),
    (("run",), "--metrics-port", "-1"),
    (("run",), "--batch-max-records", "0"),
    (("run",), "--batch-max-records", "100001"),
    (("topics", "create"), "--partitions", "0"),
    (("topics", "create"), "--replication-factor", "-2"),
    (("consume", "pass"), "--max-records", "0"),
    (("consume", "pass"), "--timeout-s", "-1"),
]


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    BAD_VALUES,
    ids=[f"{command[0]} {flag}={value}" for command, flag, value in BAD_VALUES],
)
def test_a_bad_numeric_flag_is_a_usage_error_naming_the_flag(
    command: tuple[str, ...], flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args([*command, f"{flag}={value}"])

    assert raised.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"argument {flag}" in err
    assert f"'{value}'" not in err  # values are not echoed (as for the settings), argparse's int and float do


def test_a_flag_that_mirrors_a_setting_names_the_variable_whose_bounds_it_has(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["validate", EXAMPLES, "--max-bytes", "-5"])

    err = capsys.readouterr().err
    assert "argument --max-bytes: should be greater than 0" in err
    assert "CLAIMS_MAX_RECORD_BYTES" in err


@pytest.mark.parametrize(
    ("argv", "name", "expected"),
    [
        (["validate", EXAMPLES, "--max-bytes", "1500"], "max_bytes", 1500),
        (["run", "--metrics-port", "0"], "metrics_port", 0),
        (["run", "--batch-max-records", "100000"], "batch_max_records", 100_000),
        (["publish", EXAMPLES, "--timeout-s", "2.5"], "timeout_s", 2.5),
        (["topics", "create", "--partitions", "3"], "partitions", 3),
    ],
)
def test_a_value_within_bounds_is_parsed_as_a_number(argv: list[str], name: str, expected: float) -> None:
    value = getattr(build_parser().parse_args(argv), name)

    assert value == expected
    assert type(value) is type(expected)


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from _parsers(subparser, (*path, name))


def _numeric_flags() -> set[tuple[str, str]]:
    found = set()
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            kind = action.type
            if kind in (int, float) or getattr(kind, "is_number_flag", False):
                found.add((path[0], action.option_strings[0]))
    return found


def test_every_numeric_flag_is_listed_here() -> None:
    listed = {(command[0], flag) for command, flag, _ in BAD_VALUES}

    assert _numeric_flags() == listed


def test_no_flag_is_parsed_with_a_bare_int_or_float() -> None:
    # A bare `type=int` accepts -5 and leaves the check to the command (or to nobody).
    bare = [
        (path, action.option_strings)
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if action.type in (int, float)
    ]

    assert bare == []
