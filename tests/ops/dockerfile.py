"""Reading the Dockerfile's instructions (there is no Docker engine here to build it)."""

from __future__ import annotations

import json
import re

from tests.ops.conftest import DOCKERFILE


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def last(keyword: str) -> str:
    values = [rest for key, rest in instructions() if key == keyword]
    assert values, f"the Dockerfile has no {keyword}"
    return values[-1]


def env_values() -> dict[str, str]:
    env = {}
    for key, rest in instructions():
        if key == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def healthcheck_command() -> list[str]:
    rest = last("HEALTHCHECK")
    command: list[str] = json.loads(rest[rest.index("CMD") + 3 :].strip())
    return command
