"""Fixtures of the operations tests: Debian's Prometheus binaries and the repository's ops files, parsed.

The binaries come from `scripts/install-prometheus` (into the git-ignored `.cache/prometheus/`), or from
PROMETHEUS_BIN / PROMTOOL_BIN when set. When they cannot be had, the tests fail with the reason: never skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from schemas.verdict import RuleSetRef
from worker.metrics import WorkerMetrics
from worker.probes import HealthState, ProbeServer

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_PROMETHEUS = REPO_ROOT / "scripts" / "install-prometheus"
PROMETHEUS_DIR = REPO_ROOT / "ops" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
RUNBOOK_BASE_URL = PROMETHEUS_DIR / "runbook_base_url.txt"
ALERTMANAGER_DIR = REPO_ROOT / "ops" / "alertmanager"
ALERTMANAGER_CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"
RUNBOOK = REPO_ROOT / "ops" / "RUNBOOK.md"
GRAFANA_DIR = REPO_ROOT / "ops" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "claims-worker.json"
COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
KAFKA_LOCAL = REPO_ROOT / "scripts" / "kafka-local"
EXAMPLE_CLAIMS = REPO_ROOT / "examples" / "claims.jsonl"
WORKER_JOB = "claims-worker"


@dataclass(frozen=True)
class PrometheusBinaries:
    prometheus: Path
    promtool: Path
    alertmanager: Path
    amtool: Path


@pytest.fixture(scope="session")
def prometheus_binaries() -> PrometheusBinaries:
    """Debian's `prometheus`, `promtool`, `alertmanager` and `amtool`, installed into the cache on first use."""
    prometheus = os.environ.get("PROMETHEUS_BIN")
    promtool = os.environ.get("PROMTOOL_BIN")
    alertmanager = os.environ.get("ALERTMANAGER_BIN")
    amtool = os.environ.get("AMTOOL_BIN")
    if not (prometheus and promtool and alertmanager and amtool):
        try:
            result = subprocess.run([str(INSTALL_PROMETHEUS)], capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            pytest.fail(f"scripts/install-prometheus could not run: {error}", pytrace=False)
        paths = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        if result.returncode != 0 or not {"prometheus", "promtool", "alertmanager", "amtool"} <= set(paths):
            pytest.fail(
                "Could not get Debian's prometheus, promtool, alertmanager and amtool binaries "
                f"(scripts/install-prometheus exited {result.returncode}). Run it as root on Debian/Ubuntu, or set "
                "PROMETHEUS_BIN, PROMTOOL_BIN, ALERTMANAGER_BIN and AMTOOL_BIN.\n"
                f"--- stdout ---\n{result.stdout[-2000:]}\n--- stderr ---\n{result.stderr[-3000:]}",
                pytrace=False,
            )
        prometheus = prometheus or paths["prometheus"]
        promtool = promtool or paths["promtool"]
        alertmanager = alertmanager or paths["alertmanager"]
        amtool = amtool or paths["amtool"]
    binaries = PrometheusBinaries(Path(prometheus), Path(promtool), Path(alertmanager), Path(amtool))
    for path in (binaries.prometheus, binaries.promtool, binaries.alertmanager, binaries.amtool):
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"not an executable file: {path}", pytrace=False)
    return binaries


def deployment_container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The worker container of deploy/k8s/deployment.yaml (manifests by kind)."""
    [worker] = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(worker)


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def load_yaml_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as stream:
        return [document for document in yaml.safe_load_all(stream) if document is not None]


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="session")
def alert_rules() -> list[dict[str, Any]]:
    """Every rule (recording and alerting) of ops/prometheus/alerts.yml."""
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


@pytest.fixture(scope="session")
def k8s_manifests() -> dict[str, dict[str, Any]]:
    """The manifests of deploy/k8s by kind (one object per kind there)."""
    manifests: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for document in load_yaml_documents(path):
            assert document["kind"] not in manifests, f"two {document['kind']} objects in deploy/k8s"
            manifests[document["kind"]] = document
    return manifests


def durations_s(text: str) -> float:
    """A Compose/Prometheus duration such as `35s`, `1m30s` or `500ms`, in seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(number + unit for number, unit in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


def kafka_local_version() -> str:
    """The Kafka release scripts/kafka-local runs by default (its KAFKA_VERSION)."""
    match = re.search(r"^KAFKA_VERSION=\$\{KAFKA_VERSION:-([^}]+)\}$", KAFKA_LOCAL.read_text(encoding="utf-8"), re.M)
    assert match is not None, "scripts/kafka-local no longer pins KAFKA_VERSION=${KAFKA_VERSION:-x.y.z}"
    return match.group(1)


@contextlib.contextmanager
def settings_environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ with exactly `env` as its CLAIMS_* variables (restored afterwards)."""
    saved = {key: value for key, value in os.environ.items() if key.startswith("CLAIMS_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(env)
    try:
        yield
    finally:
        for key in [key for key in os.environ if key.startswith("CLAIMS_")]:
            del os.environ[key]
        os.environ.update(saved)


@dataclass
class RunningProbeServer:
    """The worker's own probe server (worker.probes), in this process, with a clock the test moves."""

    port: int
    health: HealthState
    clock: list[float]


@pytest.fixture
def probe_server() -> Iterator[RunningProbeServer]:
    clock = [0.0]
    health = HealthState(stall_after_s=60.0, clock=lambda: clock[0])
    registry = CollectorRegistry()
    WorkerMetrics(registry, version="0.0.0", ruleset=RuleSetRef(id="test", version="1"))
    server = ProbeServer(host="127.0.0.1", port=0, registry=registry, health=health).start()
    try:
        yield RunningProbeServer(server.port, health, clock)
    finally:
        server.stop()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
