""".env.example: every CLAIMS_* variable of the README's configuration table, commented out with its default (U12)."""

from __future__ import annotations

import re

import pytest

from tests.ops.conftest import REPO_ROOT, settings_environment
from worker.settings import WorkerSettings, env_name, load_settings

pytestmark = pytest.mark.timeout(60)

ENV_EXAMPLE = REPO_ROOT / ".env.example"
README = REPO_ROOT / "README.md"
_COMMENTED = re.compile(r"^# (CLAIMS_[A-Z0-9_]+)=(.*)$")


def _readme_variables() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Configuration", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `CLAIMS_")]
    return {name for row in rows for name in re.findall(r"`(CLAIMS_[A-Z0-9_]+)`", row.split("|")[1])}


def _example_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _COMMENTED.match(line)
        if match:
            assert match.group(1) not in values, f"{match.group(1)} twice in .env.example"
            values[match.group(1)] = match.group(2)
    return values


def test_the_readme_table_lists_every_setting() -> None:
    assert _readme_variables() == {env_name(name) for name in WorkerSettings.model_fields}


def test_env_example_has_every_variable_of_the_readme_table() -> None:
    assert set(_example_values()) == _readme_variables()


def test_env_example_sets_nothing_every_variable_is_commented_out() -> None:
    active = [
        line
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]

    assert active == []


def test_each_commented_value_is_the_settings_default() -> None:
    values = _example_values()
    for name, field in WorkerSettings.model_fields.items():
        shown = values[env_name(name)]
        if field.default_factory is not None or field.default is None:
            assert shown == "", f"{env_name(name)} has no fixed default: leave it empty"
        else:
            default = field.default.value if hasattr(field.default, "value") else field.default
            expected = str(default).lower() if isinstance(default, bool) else str(default)
            assert shown in (expected, f"{default:g}" if isinstance(default, float) else expected), env_name(name)


def test_uncommenting_every_value_gives_the_default_settings() -> None:
    # What a user gets after `cp .env.example .env` and uncommenting everything: the defaults, nothing else.
    given = {name: value for name, value in _example_values().items() if value}
    with settings_environment(given):
        from_example = load_settings(worker_id="w")
    with settings_environment({}):
        defaults = load_settings(worker_id="w")

    assert from_example == defaults
