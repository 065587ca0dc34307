"""The Dockerfile, checked statically (no Docker engine here), and its HEALTHCHECK run for real.

The HEALTHCHECK command is extracted from the Dockerfile and run against the worker's own probe server: it must
pass while the worker is live and fail when it is stuck, with nothing but Python's stdlib (no curl in the image).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.ops.conftest import DOCKERIGNORE, REPO_ROOT, RunningProbeServer
from tests.ops.dockerfile import env_values, healthcheck_command, instructions, last
from worker.settings import WorkerSettings, unknown_env_settings

pytestmark = pytest.mark.timeout(60)


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative) out of the build context: last matching pattern wins."""
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines() if line.strip()]
    patterns = [pattern for pattern in patterns if not pattern.startswith("#")]
    parts = Path(path).parts
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        if any(fnmatch.fnmatch(candidate, glob) for candidate in candidates):
            result = not negated
    return result


def test_base_image_is_slim_python_3_11() -> None:
    default = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for key, rest in instructions() if key == "ARG")))
    stages = [rest.split()[0] for key, rest in instructions() if key == "FROM"]

    assert default["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert set(stages) == {"${PYTHON_IMAGE}"}


def test_project_is_installed_from_its_own_files_with_the_pinned_constraints() -> None:
    copies = [rest.split() for key, rest in instructions() if key == "COPY" and not rest.startswith("--from")]
    sources = [source for args in copies for source in args[:-1]]
    installs = [rest for key, rest in instructions() if key == "RUN" and "pip install" in rest]

    assert {"pyproject.toml", "constraints.txt", "worker", "schemas", "rules", "adapters"} <= set(sources)
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not ignored(source), f"COPY {source}: excluded from the build context by .dockerignore"
    assert any("pip install -c constraints.txt ." in command for command in installs), installs


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    for path in (".venv/bin/python", ".cache/kafka", ".git/config", "tests/conftest.py", "worker/__pycache__/x.pyc"):
        assert ignored(path), path
    for path in ("worker/app.py", "rules/policy/rules.yaml", "schemas/json/claim.submitted.v1.json", "README.md"):
        assert not ignored(path), path


def test_image_runs_as_a_non_root_user() -> None:
    user = last("USER").split(":")[0]

    assert user not in {"root", "0"}
    assert any(key == "RUN" and "useradd" in rest and user in rest for key, rest in instructions())


def test_entry_point_is_claims_worker_run() -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]

    assert json.loads(last("ENTRYPOINT")) + json.loads(last("CMD")) == ["claims-worker", "run"]
    assert "claims-worker" in scripts


def test_image_environment_and_exposed_port_match_the_worker_settings() -> None:
    env = env_values()
    claims = {key: value for key, value in env.items() if key.startswith("CLAIMS_")}

    assert unknown_env_settings(claims) == []
    assert int(claims["CLAIMS_METRICS_PORT"]) == WorkerSettings.model_fields["metrics_port"].default
    assert last("EXPOSE") == claims["CLAIMS_METRICS_PORT"]


def test_healthcheck_probes_healthz_with_python_not_curl() -> None:
    command = healthcheck_command()

    assert command[0] == "python"
    assert "/healthz" in command[-1]
    assert "curl" not in " ".join(command)


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    command = healthcheck_command()
    # The image's `python` is the project's Python; here, the test's own interpreter.
    return subprocess.run(
        [sys.executable, *command[1:]],
        env={**os.environ, "CLAIMS_METRICS_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_healthcheck_passes_against_a_live_worker_probe(probe_server: RunningProbeServer) -> None:
    result = run_healthcheck(probe_server.port)

    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_when_the_worker_loop_is_stuck(probe_server: RunningProbeServer) -> None:
    probe_server.clock[0] += 3600  # no loop tick for an hour: /healthz answers 503

    result = run_healthcheck(probe_server.port)

    assert result.returncode != 0


def test_healthcheck_fails_when_nothing_listens(probe_server: RunningProbeServer) -> None:
    result = run_healthcheck(1)  # a privileged port nothing listens on here

    assert result.returncode != 0


def test_every_package_the_project_installs_is_copied_into_the_image() -> None:
    # The CLI imports every command module, and `validate`/`convert`/`publish` import adapters/: an image without
    # one of the packages fails at `claims-worker run`.
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in patterns}
    copies = [rest.split() for key, rest in instructions() if key == "COPY" and not rest.startswith("--from")]
    sources = {source for args in copies for source in args[:-1]}

    assert packages - sources == set()
    assert [package for package in packages if ignored(package)] == []
