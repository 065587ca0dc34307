"""Rule ids in the check modules: module constants, rendered per profile, each one listed in its module's RULES."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from types import ModuleType

import pytest

import rules.checks
from rules.checks import ALL_CHECKS, EVERY_CLAIM_CHECKS
from rules.context import ProfileRuleId

CHECK_MODULES: list[ModuleType] = [
    importlib.import_module(f"rules.checks.{info.name}") for info in pkgutil.iter_modules(rules.checks.__path__)
]
_CLAIM_LEVEL_ID = re.compile(r"^(CLAIM|CROSSWALK)\.[A-Z0-9_]+\.[A-Z0-9_]+$")


def _rule_constants(module: ModuleType) -> set[str]:
    constants = set()
    for value in vars(module).values():
        if isinstance(value, ProfileRuleId):
            constants.add(value.template)
        elif isinstance(value, str) and _CLAIM_LEVEL_ID.match(value):
            constants.add(value)
    return constants


def test_a_profile_rule_id_renders_for_a_code() -> None:
    rule = ProfileRuleId("{code}.WASTE.JZ_MISSING")

    assert rule.for_code("J9353") == "J9353.WASTE.JZ_MISSING"
    assert rule.for_code("J9022") == "J9022.WASTE.JZ_MISSING"


@pytest.mark.parametrize("template", ["J9353.WASTE.JZ_MISSING", "{code}.WASTE", "{code}..JZ_MISSING", "{code}.A.B.C"])
def test_a_profile_rule_id_without_the_code_placeholder_and_two_parts_is_refused(template: str) -> None:
    with pytest.raises(ValueError, match="is not"):
        ProfileRuleId(template)


@pytest.mark.parametrize("module", CHECK_MODULES, ids=lambda module: module.__name__)
def test_every_rule_id_constant_of_a_check_module_is_in_its_rules(module: ModuleType) -> None:
    # The engine checks RULES against the catalogue; a constant left out of RULES would escape that check.
    assert _rule_constants(module) == set(module.RULES)
    assert len(module.RULES) == len(set(module.RULES))


@pytest.mark.parametrize("module", CHECK_MODULES, ids=lambda module: module.__name__)
def test_check_modules_pass_rule_ids_to_hit_and_skip_as_constants_not_literals(module: ModuleType) -> None:
    # A rule id spelt out at a `yield` (a literal or an f-string) is checked by nothing until a claim triggers it.
    literals = [
        f"line {node.lineno}: {ast.unparse(node.args[0])}"
        for node in ast.walk(ast.parse(inspect.getsource(module)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"Hit", "Skip"}
        and node.args
        and isinstance(node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp)
    ]

    assert literals == []


def test_every_check_module_is_run_once_with_its_own_rules() -> None:
    # A check module left out of rules.checks would never run, and its rules would escape the catalogue check.
    registered = sorted((check.run.__module__, check.rules) for check in ALL_CHECKS)

    assert registered == sorted((module.__name__, module.RULES) for module in CHECK_MODULES)
    assert {check.run.__module__ for check in EVERY_CLAIM_CHECKS} == {"rules.checks.crosswalk"}
