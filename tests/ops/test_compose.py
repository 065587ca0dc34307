"""docker-compose.yml, checked statically: no Docker engine runs on the build machines.

What can be checked without running it is checked against the parts the other tests run for real: the Kafka
release of scripts/kafka-local, the worker's settings class, the Prometheus release and files of the live test.
"""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import (
    ALERTMANAGER_CONFIG,
    ALERTMANAGER_DIR,
    DASHBOARD,
    EXAMPLE_CLAIMS,
    GRAFANA_DIR,
    PROMETHEUS_DIR,
    REPO_ROOT,
    PrometheusBinaries,
    durations_s,
    kafka_local_version,
    load_yaml,
    settings_environment,
)
from worker.settings import WorkerSettings, load_settings, unknown_env_settings

pytestmark = pytest.mark.timeout(60)

SERVICES = {"kafka", "topics", "worker", "prometheus", "alertmanager", "grafana", "publisher"}
WORKER_IMAGE_SERVICES = ("topics", "worker", "publisher")


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the `KEY=value` list form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def claims_env(service: dict[str, Any]) -> dict[str, str]:
    return {key: value for key, value in environment(service).items() if key.startswith("CLAIMS_")}


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (relative to the repository) of the service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = source
    return mounts


def test_compose_file_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_kafka_image_is_the_release_the_tests_run(compose: dict[str, Any]) -> None:
    image, _, tag = compose["services"]["kafka"]["image"].partition(":")

    assert image == "apache/kafka"
    assert tag == kafka_local_version()


def test_kafka_runs_kraft_with_a_health_check_and_a_valid_cluster_id(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = environment(kafka)

    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert kafka["healthcheck"]["test"]
    # A Kafka Uuid: 16 bytes, URL-safe base64 without padding (else the image fails to format its log dir).
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_clients_use_the_brokers_internal_advertised_listener(compose: dict[str, Any]) -> None:
    advertised = environment(compose["services"]["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    internal = re.search(r"INTERNAL://([^,]+)", advertised)
    assert internal is not None

    for name in WORKER_IMAGE_SERVICES:
        assert claims_env(compose["services"][name])["CLAIMS_BOOTSTRAP_SERVERS"] == internal.group(1), name


@pytest.mark.parametrize("name", WORKER_IMAGE_SERVICES)
def test_every_claims_variable_compose_sets_is_a_valid_worker_setting(compose: dict[str, Any], name: str) -> None:
    env = claims_env(compose["services"][name])

    assert unknown_env_settings(env) == []
    # The values validate too: this is what the worker would read at start-up.
    with settings_environment(env):
        load_settings()


def test_worker_services_run_the_image_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    images = {compose["services"][name]["image"] for name in WORKER_IMAGE_SERVICES}
    builds = {compose["services"][name]["build"]["context"] for name in WORKER_IMAGE_SERVICES}

    assert len(images) == 1
    assert builds == {"."}
    assert (REPO_ROOT / "Dockerfile").is_file()


def test_topics_are_created_once_with_six_partitions_after_kafka_is_healthy(compose: dict[str, Any]) -> None:
    topics = compose["services"]["topics"]

    assert topics["command"][:2] == ["topics", "create"]
    assert topics["command"][topics["command"].index("--partitions") + 1] == "6"
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics.get("restart") == "no"


def test_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]

    # A fixed container name or host port would make `--scale worker=3` fail on the second replica.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "CLAIMS_WORKER_ID" not in claims_env(worker)  # the default (the container's hostname) is unique
    assert "CLAIMS_GROUP_INSTANCE_ID" not in claims_env(worker)  # one static id for N replicas would fence them
    assert worker["command"] == ["run"]
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_worker_stop_grace_period_is_longer_than_its_shutdown_grace(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    with settings_environment(claims_env(worker)):
        shutdown_grace_s = load_settings().shutdown_grace_s

    assert durations_s(worker["stop_grace_period"]) > shutdown_grace_s


def test_prometheus_loads_the_repositorys_config_and_scrapes_the_workers_metrics_port(
    compose: dict[str, Any],
) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = bind_mounts(prometheus)
    config_flag = next(arg for arg in prometheus["command"] if arg.startswith("--config.file="))
    config_path = config_flag.split("=", 1)[1]
    config_dir = str(Path(config_path).parent)
    scrape = load_yaml(PROMETHEUS_DIR / "prometheus.yml")["scrape_configs"][0]
    worker_port = claims_env(compose["services"]["worker"])["CLAIMS_METRICS_PORT"]

    assert (REPO_ROOT / mounts[config_dir]).resolve() == PROMETHEUS_DIR
    assert scrape["dns_sd_configs"][0]["names"] == ["worker"]
    assert str(scrape["dns_sd_configs"][0]["port"]) == worker_port


def test_prometheus_image_is_the_release_the_tests_run(
    compose: dict[str, Any], prometheus_binaries: PrometheusBinaries
) -> None:
    tag = compose["services"]["prometheus"]["image"].partition(":v")[2]
    version = subprocess.run(
        [str(prometheus_binaries.prometheus), "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout

    assert re.match(rf"prometheus, version {re.escape(tag)}\b", version), version


def test_grafana_provisions_the_data_source_and_dashboard_for_anonymous_viewers(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    env = environment(grafana)
    mounts = bind_mounts(grafana)
    [datasource] = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    [provider] = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "claims-worker.yml")["providers"]
    prometheus_port = next(
        port.split(":")[-1] for port in compose["services"]["prometheus"]["ports"] if port.endswith("9090")
    )

    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert (REPO_ROOT / mounts["/etc/grafana/provisioning"]).resolve() == GRAFANA_DIR / "provisioning"
    assert (REPO_ROOT / mounts[provider["options"]["path"]]).resolve() == DASHBOARD.parent
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{provider['options']['path']}/{DASHBOARD.name}"


def test_publisher_profile_sends_the_example_claims(compose: dict[str, Any]) -> None:
    publisher = compose["services"]["publisher"]
    command = publisher["command"]
    [(container_dir, host_dir)] = bind_mounts(publisher).items()

    assert publisher["profiles"] == ["publisher"]
    assert command[0] == "publish"
    assert command[1].startswith(container_dir + "/")
    assert (REPO_ROOT / host_dir / command[1].removeprefix(container_dir + "/")).resolve() == EXAMPLE_CLAIMS


def test_settings_class_is_what_the_environment_check_uses() -> None:
    # Guards the check above: an unknown variable is reported, a known one is not.
    assert unknown_env_settings({"CLAIMS_NO_SUCH_SETTING": "1", "CLAIMS_GROUP_ID": "g"}) == ["CLAIMS_NO_SUCH_SETTING"]
    assert "group_id" in WorkerSettings.model_fields


# --- Alertmanager (issue 17, U12) ------------------------------------------------------------------------------------


def test_alertmanager_runs_the_repositorys_config(compose: dict[str, Any]) -> None:
    alertmanager = compose["services"]["alertmanager"]
    config_flag = next(arg for arg in alertmanager["command"] if arg.startswith("--config.file="))
    config_path = Path(config_flag.split("=", 1)[1])

    assert (REPO_ROOT / bind_mounts(alertmanager)[str(config_path.parent)]).resolve() == ALERTMANAGER_DIR
    assert config_path.name == ALERTMANAGER_CONFIG.name


def test_prometheus_sends_its_alerts_to_the_alertmanager_service(compose: dict[str, Any]) -> None:
    [alerting] = load_yaml(PROMETHEUS_DIR / "prometheus.yml")["alerting"]["alertmanagers"]
    [target] = alerting["static_configs"][0]["targets"]
    host, _, port = target.partition(":")
    alertmanager = compose["services"]["alertmanager"]
    listen = next(
        (arg.split("=", 1)[1] for arg in alertmanager["command"] if arg.startswith("--web.listen-address=")), ":9093"
    )

    assert host == "alertmanager"
    assert port == listen.rpartition(":")[2]
    assert "alertmanager" in compose["services"]["prometheus"]["depends_on"]


def test_alertmanager_image_is_the_release_amtool_checks(
    compose: dict[str, Any], prometheus_binaries: PrometheusBinaries
) -> None:
    tag = compose["services"]["alertmanager"]["image"].partition(":v")[2]
    version = subprocess.run(
        [str(prometheus_binaries.alertmanager), "--version"], capture_output=True, text=True, timeout=30, check=True
    )

    assert re.match(rf"alertmanager, version {re.escape(tag)}\b", version.stdout + version.stderr), version


def test_amtool_accepts_the_alertmanager_config(prometheus_binaries: PrometheusBinaries) -> None:
    result = subprocess.run(
        [str(prometheus_binaries.amtool), "check-config", str(ALERTMANAGER_CONFIG)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_go_nowhere_by_default() -> None:
    # The null receiver: no integration, so a fresh `docker compose up` notifies nobody until a route is set.
    config = load_yaml(ALERTMANAGER_CONFIG)
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}

    assert set(receivers[config["route"]["receiver"]]) == {"name"}
    assert config["route"].get("routes", []) == []
