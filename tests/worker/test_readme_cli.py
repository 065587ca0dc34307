"""The README is the contract users read: its command table agrees with `claims-worker --help` of every command,
its exit-code table with worker/exit_codes.py, and its first commands say how to reach `claims-worker` (U9)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.worker.conftest import REPO_ROOT
from worker.cli import build_parser
from worker.exit_codes import ExitCode

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    return README.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(command line, help text, parser) of every runnable command, `topics create` included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                nested = any(isinstance(a, argparse._SubParsersAction) for a in subparser._actions)
                if nested:
                    yield from _commands(subparser, (*path, name))
                else:
                    yield " ".join(("claims-worker", *path, name)), str(helps[name]), subparser


def _readme_commands() -> dict[str, tuple[str, set[str]]]:
    """command line -> (what it does, the flags named) of the README's command table."""
    rows = {}
    for line in _section("## Commands").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`claims-worker"):
            rows[cells[0].strip("`")] = (cells[1], set(re.findall(r"`(--[a-z0-9-]+)`", cells[2])))
    return rows


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def test_the_readme_lists_every_command_and_no_other() -> None:
    assert set(_readme_commands()) == {command for command, _, _ in _commands(build_parser())}


@pytest.mark.parametrize("command", [command for command, _, _ in _commands(build_parser())])
def test_each_commands_description_and_flags_agree_with_its_help(command: str) -> None:
    [(help_text, parser)] = [(text, parser) for name, text, parser in _commands(build_parser()) if name == command]
    description, flags = _readme_commands()[command]

    assert description == help_text
    assert flags == _flags(parser)
    shown = parser.format_help()
    assert all(flag in shown for flag in flags)


def test_claims_worker_help_names_every_command_of_the_readme() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "--help"], capture_output=True, text=True, timeout=60, check=True
    )

    for command in _readme_commands():
        assert command.split()[1] in result.stdout


def test_the_exit_code_table_has_every_exit_code() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", _section("### Exit codes"), re.M))

    assert set(rows) == {str(int(code)) for code in ExitCode}


def test_the_readme_says_how_to_reach_claims_worker_right_after_the_first_two_commands() -> None:
    first_block_end = README.index("```", README.index("make test"))
    after = README[first_block_end + 3 :].lstrip("\n").split("\n\n", 1)[0]

    assert ". .venv/bin/activate" in after
    assert ".venv/bin/claims-worker" in after
