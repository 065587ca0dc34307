"""A real Prometheus (Debian's) scrapes a real `claims-worker run` validating the example claims on the test broker;
then every dashboard query and every alert expression goes to Prometheus' HTTP API.

One stack for the module (starting it is the slow part): fresh topics, a worker configured like the compose
`worker` service, Prometheus from ops/prometheus/prometheus.yml with 1 s intervals. The claims are published only
after Prometheus has scraped the idle worker a few times, so rates and histograms see the burst.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient

from tests.ops.conftest import (
    EXAMPLE_CLAIMS,
    K8S_DIR,
    WORKER_JOB,
    PrometheusBinaries,
    deployment_container,
    http_status,
    load_yaml,
)
from tests.ops.dashboards import PanelQuery, metric_names, panel_queries, substitute
from tests.ops.dockerfile import healthcheck_command
from tests.ops.live import (
    RATE_INTERVAL,
    STEP_S,
    PrometheusError,
    PrometheusProcess,
    WorkerProcess,
    claims_worker_command,
    finite_values,
    resolve_variables,
    running_prometheus,
    running_worker,
    wait_for,
)
from worker.topic_set import TopicSet

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

PARTITIONS = 3


@dataclass
class LiveStack:
    prometheus: PrometheusProcess
    worker: WorkerProcess
    instance: str
    input_topic: str
    published: int

    def diagnostics(self) -> str:
        return f"{self.worker.log_tail()}\n{self.prometheus.log_tail()}"


@pytest.fixture(scope="module")
def ops_topics(kafka_admin: KafkaAdminClient) -> Iterator[dict[str, str]]:
    """Fresh input, pass, fail and dead-letter topics for this module, deleted afterwards."""
    topic_set = TopicSet.prefixed(f"t.ops.{uuid.uuid4().hex[:8]}")
    topics = topic_set.env()
    kafka_admin.create_topics(topic_set.new_topics(partitions=PARTITIONS), wait_for_metadata=True)
    yield topics
    # Best effort: names are unique, so a leftover cannot disturb another test.
    with contextlib.suppress(Exception):
        kafka_admin.delete_topics(list(topics.values()))


def compose_worker_env(compose: dict[str, Any]) -> dict[str, str]:
    env = compose["services"]["worker"]["environment"]
    return {key: str(value) for key, value in env.items() if key.startswith("CLAIMS_")}


def publish_examples(bootstrap: str, topic: str) -> int:
    """`claims-worker publish` (what the compose `publisher` runs) of examples/claims.jsonl; returns the count."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLAIMS_")}
    result = subprocess.run(
        [claims_worker_command(), "publish", str(EXAMPLE_CLAIMS), "--topic", topic, "--bootstrap-servers", bootstrap],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, f"publish failed: {result.stdout}\n{result.stderr}"
    return sum(1 for line in EXAMPLE_CLAIMS.read_bytes().splitlines() if line.strip())


@pytest.fixture(scope="module")
def live_stack(
    kafka_bootstrap: str,
    ops_topics: dict[str, str],
    prometheus_binaries: PrometheusBinaries,
    compose: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    workdir = tmp_path_factory.mktemp("ops-live")
    env = {
        **compose_worker_env(compose),  # the compose stack's settings, then what only differs on a test machine
        **ops_topics,
        "CLAIMS_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CLAIMS_GROUP_ID": f"t.ops.group.{uuid.uuid4().hex[:8]}",
        "CLAIMS_WORKER_ID": f"ops-test-{uuid.uuid4().hex[:8]}",
        "CLAIMS_METRICS_HOST": "127.0.0.1",
        "CLAIMS_METRICS_PORT": "0",
        "CLAIMS_HISTORY_KEY": "ops-test-history-key-0123456789",
        "CLAIMS_STATE_DIR": str(workdir / "state"),
    }
    with running_worker(env, workdir) as worker:
        instance = f"127.0.0.1:{worker.metrics_port}"
        with running_prometheus(prometheus_binaries.prometheus, instance, workdir) as prometheus:
            stack = LiveStack(prometheus, worker, instance, ops_topics["CLAIMS_INPUT_TOPIC"], 0)
            selector = f'job="{WORKER_JOB}"'

            # Given a worker that has joined its group and been scraped idle a few times
            wait_for(
                "the worker to be scraped, ready and assigned every partition",
                lambda: (
                    prometheus.value(f"sum(up{{{selector}}}) + sum(claims_ready{{{selector}}})") == 2
                    and prometheus.value(f'sum(claims_assigned_partitions{{{selector}, topic="{stack.input_topic}"}})')
                    == PARTITIONS
                ),
                90,
                stack.diagnostics,
            )
            wait_for(
                "three idle scrapes",
                lambda: (prometheus.value(f"count_over_time(claims_consumed_total{{{selector}}}[1m])") or 0) >= 3,
                30,
                stack.diagnostics,
            )
            # When the example claims are published
            stack.published = publish_examples(kafka_bootstrap, stack.input_topic)
            # Then Prometheus sees every one consumed, and keeps scraping a few seconds more
            wait_for(
                f"Prometheus to see {stack.published} claims consumed",
                lambda: prometheus.value(f"sum(claims_consumed_total{{{selector}}})") == stack.published,
                90,
                stack.diagnostics,
            )
            consumed_at = time.time()
            wait_for(
                "three more scrapes",
                lambda: (
                    (prometheus.value(f"max(timestamp(claims_consumed_total{{{selector}}}))") or 0) > consumed_at + 3
                ),
                30,
                stack.diagnostics,
            )
            yield stack


def grafana_values(stack: LiveStack, dashboard: dict[str, Any], *, strict: bool) -> dict[str, str]:
    values = resolve_variables(
        dashboard,
        stack.prometheus,
        {"job": WORKER_JOB, "instance": stack.instance, "topic": stack.input_topic},
        strict=strict,
    )
    range_s = math.ceil(time.time() - stack.prometheus.started_at) + 1
    return {**values, "__rate_interval": RATE_INTERVAL, "__interval": f"{STEP_S}s", "__range": f"{range_s}s"}


def run_panel_query(stack: LiveStack, query: PanelQuery, values: dict[str, str]) -> list[dict[str, Any]]:
    """The query as Grafana sends it: an instant query at `now`, or a range query over the run, step 1 s."""
    expr = substitute(query.expr, values)
    now = time.time()
    if query.instant:
        data = stack.prometheus.api("/api/v1/query", query=expr, time=f"{now:.3f}")
    else:
        data = stack.prometheus.api(
            "/api/v1/query_range",
            query=expr,
            start=f"{stack.prometheus.started_at:.3f}",
            end=f"{now:.3f}",
            step=str(STEP_S),
        )
    result: list[dict[str, Any]] = data["result"]
    return result


def queries_without_data(stack: LiveStack, dashboard: dict[str, Any]) -> list[str]:
    """Panel queries that fail to parse, return nothing, or only NaN (e.g. a rate window with too few samples)."""
    values = grafana_values(stack, dashboard, strict=False)
    problems = []
    for query in panel_queries(dashboard):
        try:
            result = run_panel_query(stack, query, values)
        except PrometheusError as error:
            problems.append(f"{query}: {error}")
            continue
        if not result:
            problems.append(f"{query}: no data: {substitute(query.expr, values)}")
        elif not finite_values(result):
            problems.append(f"{query}: only NaN: {substitute(query.expr, values)}")
    return problems


def exported_metric_names(stack: LiveStack) -> set[str]:
    """Metric names the worker's target has in Prometheus (its own, plus `up` and scrape_* from Prometheus)."""
    names: list[str] = stack.prometheus.api("/api/v1/label/__name__/values", **{"match[]": f'{{job="{WORKER_JOB}"}}'})
    return set(names)


def unexported_metrics(exprs: dict[str, str], known: set[str]) -> list[str]:
    return [
        f"{where}: {sorted(metric_names(expr) - known)}" for where, expr in exprs.items() if metric_names(expr) - known
    ]


def dashboard_exprs(stack: LiveStack, dashboard: dict[str, Any]) -> dict[str, str]:
    values = grafana_values(stack, dashboard, strict=False)
    return {str(query): substitute(query.expr, values) for query in panel_queries(dashboard)}


# --- the stack ---------------------------------------------------------------------------------------------------


def test_prometheus_scrapes_the_worker_with_the_repositorys_scrape_job(live_stack: LiveStack) -> None:
    targets = live_stack.prometheus.api("/api/v1/targets")["activeTargets"]
    [target] = [target for target in targets if target["labels"]["job"] == WORKER_JOB]

    assert target["health"] == "up", target["lastError"]
    assert target["labels"]["instance"] == live_stack.instance


def test_prometheus_loads_and_evaluates_every_rule_of_alerts_yml(
    live_stack: LiveStack, alert_rules: list[dict[str, Any]]
) -> None:
    expected = {rule.get("alert") or rule["record"] for rule in alert_rules}

    def evaluated() -> list[dict[str, Any]] | None:
        groups = live_stack.prometheus.api("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = all(not rule["lastEvaluation"].startswith("0001-") for rule in rules)
        return rules if rules and done else None

    rules = wait_for("every rule to be evaluated once", evaluated, 30, live_stack.diagnostics)

    assert {rule["name"] for rule in rules} == expected
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []


def test_every_alert_and_recording_expression_parses(live_stack: LiveStack, alert_rules: list[dict[str, Any]]) -> None:
    errors = []
    for rule in alert_rules:
        try:
            live_stack.prometheus.instant(rule["expr"])
        except PrometheusError as error:
            errors.append(f"{rule.get('alert') or rule['record']}: {error}")

    assert errors == []


def test_every_dashboard_panel_query_returns_data(live_stack: LiveStack, dashboard: dict[str, Any]) -> None:
    assert queries_without_data(live_stack, dashboard) == []


def test_dashboard_and_alerts_name_only_metrics_the_worker_exports(
    live_stack: LiveStack, dashboard: dict[str, Any], alert_rules: list[dict[str, Any]]
) -> None:
    known = exported_metric_names(live_stack) | {rule["record"] for rule in alert_rules if "record" in rule}
    exprs = dashboard_exprs(live_stack, dashboard)
    exprs.update({f"rule {rule.get('alert') or rule['record']}": rule["expr"] for rule in alert_rules})

    assert unexported_metrics(exprs, known) == []


def test_a_panel_naming_a_metric_the_worker_does_not_export_fails_both_checks(
    live_stack: LiveStack, dashboard: dict[str, Any]
) -> None:
    typo = 'sum(rate(claims_verdict_total{job="$job", instance=~"$instance"}[$__rate_interval]))'  # verdicts
    broken = {
        **dashboard,
        "panels": [{"type": "timeseries", "title": "Typo", "targets": [{"refId": "A", "expr": typo}]}],
    }

    assert queries_without_data(live_stack, broken) != []
    assert unexported_metrics(dashboard_exprs(live_stack, broken), exported_metric_names(live_stack)) != []


def test_template_variables_offer_the_running_workers_job_instance_and_input_topic(
    live_stack: LiveStack, dashboard: dict[str, Any]
) -> None:
    values = grafana_values(live_stack, dashboard, strict=True)

    assert values["job"] == WORKER_JOB
    assert values["instance"] == live_stack.instance
    assert values["topic"] == live_stack.input_topic


def test_k8s_probe_paths_and_the_docker_healthcheck_pass_on_the_running_worker(live_stack: LiveStack) -> None:
    worker = deployment_container({"Deployment": load_yaml(K8S_DIR / "deployment.yaml")})
    base = f"http://127.0.0.1:{live_stack.worker.metrics_port}"
    healthcheck = healthcheck_command()

    assert http_status(base + worker["livenessProbe"]["httpGet"]["path"]) == 200
    assert http_status(base + worker["readinessProbe"]["httpGet"]["path"]) == 200
    result = subprocess.run(
        [sys.executable, *healthcheck[1:]],
        env={**os.environ, "CLAIMS_METRICS_PORT": str(live_stack.worker.metrics_port)},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_worker_validated_every_claim_it_consumed(live_stack: LiveStack) -> None:
    # The data behind the panels is the real thing: each consumed record became a verdict or a dead letter.
    selector = f'job="{WORKER_JOB}"'
    verdicts = live_stack.prometheus.value(f"sum(claims_verdicts_total{{{selector}}})")
    dead_letters = live_stack.prometheus.value(f"sum(claims_dead_letters_total{{{selector}}})")

    assert verdicts is not None
    assert dead_letters is not None
    assert verdicts + dead_letters == live_stack.published
    assert Path(live_stack.worker.log_path).is_file()
