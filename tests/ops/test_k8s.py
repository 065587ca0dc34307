"""deploy/k8s: the manifests parse and agree with the worker (port, probe paths, settings, grace) and each other.

No cluster runs here; the probe paths are requested from the worker's own probe server instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ops.conftest import (
    COMPOSE,
    K8S_DIR,
    RunningProbeServer,
    deployment_container,
    http_status,
    load_yaml,
    settings_environment,
)
from worker.settings import WorkerSettings, load_settings, unknown_env_settings

pytestmark = pytest.mark.timeout(60)

METRICS_PORT = WorkerSettings.model_fields["metrics_port"].default
# The CPU sizing rule stated in deploy/k8s/deployment.yaml, rounded up from `make bench` (bench/results/2026-11-27.json:
# worker_cpu_cores 0.42 and evaluator_cpu_cores 0.74 at about 10k claims/s, at_least_once).
MAIN_PROCESS_CORES = 0.5
CORES_PER_EVALUATOR_PROCESS = 0.75


def literal_env(manifests: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in deployment_container(manifests)["env"] if "value" in item}


def cpu_cores(quantity: str | float) -> float:
    """A Kubernetes CPU quantity ("250m", "1", 1.5 as YAML gives it) in cores."""
    text = str(quantity)
    return int(text.removesuffix("m")) / 1000 if text.endswith("m") else float(text)


def claims_env(manifests: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The CLAIMS_* variables with Kubernetes' $(VAR) references resolved as the kubelet would (pod name made up)."""
    env = {"POD_NAME": "claims-worker-5d9c7b7f8-abcde"}
    for item in deployment_container(manifests)["env"]:
        if "value" in item:
            value = item["value"]
            for name, resolved in env.items():
                value = value.replace(f"$({name})", resolved)
            env[item["name"]] = value
    return {key: value for key, value in env.items() if key.startswith("CLAIMS_")}


def test_manifests_parse_into_a_deployment_a_service_and_a_scaled_object(
    k8s_manifests: dict[str, dict[str, Any]],
) -> None:
    assert set(k8s_manifests) == {"Deployment", "Service", "ScaledObject", "Kustomization"}


def test_every_claims_variable_is_a_valid_worker_setting(k8s_manifests: dict[str, dict[str, Any]]) -> None:
    env = claims_env(k8s_manifests)

    assert unknown_env_settings(env) == []
    with settings_environment(env):
        load_settings()


def test_container_serves_metrics_and_probes_on_the_workers_metrics_port(
    k8s_manifests: dict[str, dict[str, Any]],
) -> None:
    worker = deployment_container(k8s_manifests)
    [port] = worker["ports"]
    annotations = k8s_manifests["Deployment"]["spec"]["template"]["metadata"]["annotations"]

    assert port["containerPort"] == METRICS_PORT
    assert int(claims_env(k8s_manifests).get("CLAIMS_METRICS_PORT", METRICS_PORT)) == METRICS_PORT
    assert worker["livenessProbe"]["httpGet"]["port"] == port["name"]
    assert worker["readinessProbe"]["httpGet"]["port"] == port["name"]
    assert int(annotations["prometheus.io/port"]) == METRICS_PORT


def test_probes_use_the_paths_the_worker_serves(
    k8s_manifests: dict[str, dict[str, Any]], probe_server: RunningProbeServer
) -> None:
    worker = deployment_container(k8s_manifests)
    base = f"http://127.0.0.1:{probe_server.port}"
    liveness = worker["livenessProbe"]["httpGet"]["path"]
    readiness = worker["readinessProbe"]["httpGet"]["path"]

    assert (liveness, readiness) == ("/healthz", "/readyz")
    assert http_status(base + liveness) == 200
    assert http_status(base + readiness) == 503  # not connected yet: no traffic, no restart
    probe_server.health.set_ready(True)
    assert http_status(base + readiness) == 200
    probe_server.clock[0] += 3600  # the loop stopped turning
    assert http_status(base + liveness) == 503


def test_termination_grace_is_longer_than_the_shutdown_grace(k8s_manifests: dict[str, dict[str, Any]]) -> None:
    pod = k8s_manifests["Deployment"]["spec"]["template"]["spec"]
    with settings_environment(claims_env(k8s_manifests)):
        shutdown_grace_s = load_settings().shutdown_grace_s

    assert pod["terminationGracePeriodSeconds"] > shutdown_grace_s


def test_static_membership_and_worker_id_come_from_the_pod_name(k8s_manifests: dict[str, dict[str, Any]]) -> None:
    env = deployment_container(k8s_manifests)["env"]
    [pod_name] = [item for item in env if item["name"] == "POD_NAME"]
    literal = literal_env(k8s_manifests)

    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert literal["CLAIMS_GROUP_INSTANCE_ID"] == "$(POD_NAME)"
    assert literal["CLAIMS_WORKER_ID"] == "$(POD_NAME)"
    # $(VAR) is expanded only from variables defined earlier in the list.
    names = [item["name"] for item in env]
    assert names.index("POD_NAME") < names.index("CLAIMS_GROUP_INSTANCE_ID")


def test_pod_runs_as_the_images_non_root_user_with_resources(k8s_manifests: dict[str, dict[str, Any]]) -> None:
    pod = k8s_manifests["Deployment"]["spec"]["template"]["spec"]
    resources = deployment_container(k8s_manifests)["resources"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # Dockerfile: useradd --uid 10001
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_cpu_request_covers_the_main_process_and_every_evaluator_process(
    k8s_manifests: dict[str, dict[str, Any]],
) -> None:
    resources = deployment_container(k8s_manifests)["resources"]
    env = literal_env(k8s_manifests)
    # Explicit, so a change of the setting's default cannot leave the request sized for another process count.
    assert "CLAIMS_EVALUATOR_PROCESSES" in env
    processes = int(env["CLAIMS_EVALUATOR_PROCESSES"])

    needed = max(1.0, MAIN_PROCESS_CORES + CORES_PER_EVALUATOR_PROCESS * processes)
    assert cpu_cores(resources["requests"]["cpu"]) >= needed


def test_cpu_is_not_limited(k8s_manifests: dict[str, dict[str, Any]]) -> None:
    limits = deployment_container(k8s_manifests)["resources"].get("limits", {})

    assert "cpu" not in limits  # CFS throttling would stall batches mid-way while the node has idle cores


def test_service_exposes_the_metrics_port_of_the_deployments_pods(k8s_manifests: dict[str, dict[str, Any]]) -> None:
    service = k8s_manifests["Service"]
    pod_labels = k8s_manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    [port] = service["spec"]["ports"]

    assert service["metadata"]["name"] == "claims-worker"  # the Prometheus job name the alerts select
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert port["port"] == METRICS_PORT
    assert port["targetPort"] == deployment_container(k8s_manifests)["ports"][0]["name"]


def test_keda_scales_the_deployment_on_lag_up_to_the_partition_count(k8s_manifests: dict[str, dict[str, Any]]) -> None:
    scaled = k8s_manifests["ScaledObject"]["spec"]
    [trigger] = scaled["triggers"]
    env = claims_env(k8s_manifests)
    compose_topics = load_yaml(COMPOSE)["services"]["topics"]["command"]
    partitions = int(compose_topics[compose_topics.index("--partitions") + 1])

    assert scaled["scaleTargetRef"]["name"] == k8s_manifests["Deployment"]["metadata"]["name"]
    assert trigger["type"] == "kafka"
    assert int(trigger["metadata"]["lagThreshold"]) > 0
    assert trigger["metadata"]["consumerGroup"] == env["CLAIMS_GROUP_ID"]
    assert trigger["metadata"]["topic"] == env["CLAIMS_INPUT_TOPIC"]
    assert trigger["metadata"]["bootstrapServers"] == env["CLAIMS_BOOTSTRAP_SERVERS"]
    assert trigger["metadata"].get("allowIdleConsumers", "false") == "false"
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] == partitions
    assert k8s_manifests["Deployment"]["spec"]["replicas"] <= partitions


def test_rolling_updates_never_exceed_the_replica_count(k8s_manifests: dict[str, dict[str, Any]]) -> None:
    rolling = k8s_manifests["Deployment"]["spec"]["strategy"]["rollingUpdate"]

    assert rolling["maxSurge"] == 0  # a surge pod beyond the partition count would only force a rebalance


def test_kustomization_lists_every_manifest(k8s_manifests: dict[str, dict[str, Any]]) -> None:
    listed = set(k8s_manifests["Kustomization"]["resources"])

    assert listed == {path.name for path in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
