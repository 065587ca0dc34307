"""A real Prometheus scraping a real `claims-worker run`, for tests/ops/test_live_stack.py.

Prometheus runs from ops/prometheus/prometheus.yml with only what a test machine needs changed: 1 s intervals, the
worker's address instead of DNS discovery, an absolute path to the same alerts.yml, a temporary data dir.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.ops.conftest import ALERTS, PROMETHEUS_CONFIG, WORKER_JOB
from tests.ops.dashboards import label_values_query, template_variables
from tests.ports import free_port

T = TypeVar("T")

SCRAPE_INTERVAL = "1s"
# Grafana's $__rate_interval is max($__interval + scrape interval, 4 x scrape interval); 10 s (10 scrapes) leaves
# room for a late scrape on a busy machine while still showing the burst of a short run.
RATE_INTERVAL = "10s"
STEP_S = 1


def wait_for(what: str, check: Callable[[], T | None], timeout_s: float, diagnostics: Callable[[], str]) -> T:
    """Poll `check` until it returns something other than None/False; fail with `diagnostics()` after the bound."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}\n{diagnostics()}", pytrace=False)
        time.sleep(0.25)


class PrometheusError(Exception):
    """The query API answered with an error (e.g. a query that does not parse)."""


@dataclass
class PrometheusProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float

    def api(self, path: str, **params: str | list[str]) -> Any:
        """GET from the HTTP API; returns `data`, raises PrometheusError with Prometheus' message on failure."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=20) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            try:
                answer = json.load(error)
            except ValueError:
                raise PrometheusError(f"HTTP {error.code} from {path}") from None
        if answer.get("status") != "success":
            raise PrometheusError(f"{answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def instant(self, query: str) -> list[dict[str, Any]]:
        data = self.api("/api/v1/query", query=query)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def value(self, query: str) -> float | None:
        """The single value of an instant query, None when it has no result."""
        result = self.instant(query)
        return float(result[0]["value"][1]) if result else None

    def log_tail(self) -> str:
        return "--- prometheus log ---\n" + self.log_path.read_text(errors="replace")[-3000:]


def prometheus_config(worker_address: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    config["global"].update(
        scrape_interval=SCRAPE_INTERVAL, evaluation_interval=SCRAPE_INTERVAL, scrape_timeout=SCRAPE_INTERVAL
    )
    config["rule_files"] = [str(ALERTS)]
    config.pop("alerting", None)  # no Alertmanager runs in the tests (amtool checks its config)
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == WORKER_JOB]
    del job["dns_sd_configs"]
    job["static_configs"] = [{"targets": [worker_address]}]
    config["scrape_configs"] = [job]
    return config


@contextlib.contextmanager
def running_prometheus(binary: Path, worker_address: str, workdir: Path) -> Iterator[PrometheusProcess]:
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(prometheus_config(worker_address)), encoding="utf-8")
    log_path = workdir / "prometheus.log"
    prometheus = None
    # A free port can be taken between the probe and Prometheus' bind: try another one, a few times.
    for _attempt in range(3):
        port = free_port()
        started_at = time.time()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    "--storage.tsdb.retention.time=1h",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        candidate = PrometheusProcess(f"http://127.0.0.1:{port}", process, log_path, started_at)
        if _wait_ready(candidate):
            prometheus = candidate
            break
        _stop(process, 10)
    if prometheus is None:
        pytest.fail(f"Prometheus did not start\n--- log ---\n{log_path.read_text(errors='replace')[-3000:]}")
    try:
        yield prometheus
    finally:
        _stop(prometheus.process, 15)


def _wait_ready(prometheus: PrometheusProcess, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and prometheus.process.poll() is None:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{prometheus.url}/-/ready", timeout=2) as response:
            if response.status == 200:
                return True
        time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


@dataclass
class WorkerProcess:
    """`claims-worker run` as a subprocess; JSON logs in `log_path`."""

    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int = 0

    def events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def log_tail(self) -> str:
        return "--- worker log ---\n" + self.log_path.read_text(errors="replace")[-4000:]


def claims_worker_command() -> str:
    """The `claims-worker` console script of the interpreter running the tests (the project's venv)."""
    script = Path(sys.executable).parent / "claims-worker"
    if not script.is_file():
        pytest.fail(f"no claims-worker next to {sys.executable}: install the project (make install)", pytrace=False)
    return str(script)


@contextlib.contextmanager
def running_worker(env: Mapping[str, str], workdir: Path) -> Iterator[WorkerProcess]:
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("CLAIMS_")}
    full_env.update(env)
    full_env["PYTHONUNBUFFERED"] = "1"
    log_path = workdir / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [claims_worker_command(), "run"], env=full_env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
    worker = WorkerProcess(process, log_path)
    try:

        def serving_port() -> int | None:
            if process.poll() is not None:
                pytest.fail(f"claims-worker run exited with {process.returncode}\n{worker.log_tail()}", pytrace=False)
            ports = [event["port"] for event in worker.events() if event.get("event") == "metrics.serving"]
            return int(ports[0]) if ports else None

        # CLAIMS_METRICS_PORT=0: the worker binds a free port and logs it, so no port can be stolen in between.
        worker.metrics_port = wait_for("the worker's metrics.serving log line", serving_port, 60, worker.log_tail)
        yield worker
    finally:
        _stop(process, 40)


# --- Grafana semantics ------------------------------------------------------------------------------------------


def resolve_variables(
    dashboard: Mapping[str, Any], prometheus: PrometheusProcess, preferred: Mapping[str, str], *, strict: bool
) -> dict[str, str]:
    """Values for the dashboard's query variables, found the way Grafana finds them (label_values on the series).

    Each variable takes its `preferred` value when Prometheus offers it, else the first one offered. A variable
    with no value at all takes its "All" value when it has one and `strict` is False, else fails the test.
    """
    values: dict[str, str] = {}
    for variable in template_variables(dashboard):
        if variable["type"] == "datasource":
            values[variable["name"]] = variable["current"]["value"]
            continue
        selector, label = label_values_query(variable)
        for name, value in values.items():
            selector = selector.replace(f"${name}", value)
        series = prometheus.api("/api/v1/series", **{"match[]": selector, "start": str(prometheus.started_at)})
        offered = sorted({item[label] for item in series if label in item})
        want = preferred.get(variable["name"])
        if want in offered:
            values[variable["name"]] = want
        elif offered and want is None:
            values[variable["name"]] = offered[0]
        elif variable.get("includeAll") and not strict:
            values[variable["name"]] = variable.get("allValue") or ".*"
        else:
            pytest.fail(
                f"template variable ${variable['name']} = label_values({selector}, {label}) offers {offered}, "
                f"expected {want!r} among them",
                pytrace=False,
            )
    return values


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    samples = [series["value"] for series in result if "value" in series]
    samples += [sample for series in result for sample in series.get("values", [])]
    return [float(value) for _, value in samples if not math.isnan(float(value))]
