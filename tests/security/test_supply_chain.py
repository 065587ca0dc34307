"""Dependencies are pinned: constraints.txt pins every package of the environment `make install` builds, exactly.

The non-root container is checked in tests/ops (test_dockerfile.py: a `USER` made by `useradd`, never root;
test_k8s.py: `runAsNonRoot` with the image's uid). The dependency audit is `scripts/audit` (pip-audit), which
needs a vulnerability source that answers from the machine it runs on.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Installed in every venv by Python itself, or the project: not pinned (as `pip freeze` leaves them out).
UNPINNED = {"pip", "setuptools", "wheel", "distribute", "claims-validation-worker"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    found = {}
    for raw in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, version = line.partition("==")
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name), f"not an exact pin: {line}"
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"not an exact pin: {line}"
        found[canonical(name)] = version
    return found


def test_every_line_of_the_constraints_is_an_exact_pin() -> None:
    assert len(pins()) > 10


def test_the_test_environment_runs_exactly_the_pinned_versions() -> None:
    installed = {canonical(dist.metadata["Name"]): dist.version for dist in importlib.metadata.distributions()}

    pinned = pins()
    drift = {name: found for name, found in installed.items() if name not in UNPINNED and pinned.get(name) != found}

    assert drift == {}, "installed but not pinned (or at another version): regenerate constraints.txt"
    assert set(pinned) <= set(installed)


@pytest.mark.parametrize("path", ["Makefile", "Dockerfile"])
def test_installs_use_the_constraints(path: str) -> None:
    text = (REPO_ROOT / path).read_text()

    # Every pip install but pip's own upgrade goes through the constraints.
    installs = [line for line in text.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs, f"{path} installs nothing with pip"
    assert all("-c constraints.txt" in line for line in installs), installs
