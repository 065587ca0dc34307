"""`claims-worker rules`: list every rule with its category, severity, predicted CARC/RARC/group code and source.

The list is the rule catalogue `rules/policy/rules.yaml` as the worker loaded it: profile rules expanded per
drug profile (J9353.*, J9022.*), sorted by rule id. `--format jsonl` prints one JSON object per rule. With
`--policy-dir` (or CLAIMS_POLICY_DIR) the CMS tables are loaded and checked too, and the version line shows
`+ncci.<digest>` as the verdicts do; a tampered table exits 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from rules.policy_tables import RuleSpec
from worker.commands.validate import load_policy_of, silence_stdout
from worker.exit_codes import ExitCode

_WIDTH = 110


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=("text", "jsonl"), default="text", help="output format (default: %(default)s)"
    )
    parser.add_argument(
        "--payer-policy-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="also load and check this payer policy file (the rule set version then names it)",
    )
    parser.add_argument(
        "--policy-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="also load and check this policy directory of CMS MUE/PTP tables (the rule set version then names its "
        "manifest digest); overrides CLAIMS_POLICY_DIR",
    )


def rule_document(spec: RuleSpec) -> dict[str, object]:
    """One rule as a JSON-ready mapping (the `--format jsonl` line)."""
    return {
        "rule_id": spec.rule_id,
        "scope": spec.scope,
        "profile": spec.profile_code,
        "category": spec.category.value,
        "severity": spec.severity.value,
        "carc": spec.carc,
        "rarc": list(spec.rarc),
        "group_code": spec.group_code.value if spec.group_code else None,
        "group_code_confidence": spec.group_code_confidence,
        "description": spec.description,
        "message": spec.message,
        "provider_action": spec.provider_action,
        "source": spec.source,
    }


def _text(spec: RuleSpec) -> str:
    codes = [f"CARC {spec.carc}" if spec.carc else "no CARC"]
    if spec.rarc:
        codes.append("RARC " + " ".join(spec.rarc))
    if spec.group_code:
        codes.append(f"group {spec.group_code.value} ({spec.group_code_confidence}: inferred)")
    head = f"{spec.rule_id}  [{spec.category.value}, {spec.severity.value}; {', '.join(codes)}]"
    body = [
        *textwrap.wrap(spec.description, _WIDTH, initial_indent="    ", subsequent_indent="    "),
        *textwrap.wrap(f"source: {spec.source}", _WIDTH, initial_indent="    ", subsequent_indent="      "),
    ]
    return "\n".join([head, *body])


def run(args: argparse.Namespace) -> int:
    # The same policy `validate` and `run` would judge with, so the version line is the one verdicts carry.
    loaded = load_policy_of("claims-worker rules", args)
    if loaded is None:
        return ExitCode.CONFIG
    _, engine = loaded
    rules = engine.rules()
    if args.format == "jsonl":
        lines = [json.dumps(rule_document(spec), ensure_ascii=False) for spec in rules]
    else:
        ruleset = engine.ruleset
        lines = [
            f"Rule set {ruleset.id} {ruleset.version}: {len(rules)} rules",
            "Sources: [ID] = rules/policy/SOURCES.md (confidence H/M/L); issue 4 = the rules issue.",
            "",
            *(_text(spec) for spec in rules),
        ]
    try:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    return ExitCode.OK
