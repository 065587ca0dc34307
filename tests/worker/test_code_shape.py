"""The loop stays readable: the limits the loop issue set, checked so that a change that outgrows them is seen.

`worker/loop.py` under 300 lines, `ValidationLoop.run_once` under 40, no function in `worker/` over 60.
"""

from __future__ import annotations

import ast
from pathlib import Path

import worker

WORKER_DIR = Path(worker.__file__).parent


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (f"{path.relative_to(WORKER_DIR.parent)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
    ]


def test_loop_module_is_under_300_lines() -> None:
    lines = (WORKER_DIR / "loop.py").read_text(encoding="utf-8").count("\n")
    assert lines < 300


def test_run_once_is_under_40_lines() -> None:
    lengths = {name.rsplit(" ", 1)[1]: length for name, length in _functions(WORKER_DIR / "loop.py")}
    assert lengths["run_once"] < 40


def test_no_function_in_worker_is_over_60_lines() -> None:
    too_long = [
        (name, length) for path in sorted(WORKER_DIR.rglob("*.py")) for name, length in _functions(path) if length > 60
    ]
    assert too_long == []
