"""The Prometheus configuration and alert rules: promtool's checks and unit tests, and what every alert carries."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import (
    ALERTS,
    ALERTS_TEST,
    PROMETHEUS_CONFIG,
    REPO_ROOT,
    RUNBOOK,
    RUNBOOK_BASE_URL,
    WORKER_JOB,
    PrometheusBinaries,
    load_yaml,
)
from worker.settings import WorkerSettings

pytestmark = pytest.mark.timeout(120)

REQUIRED_ALERTS = {
    "ClaimsWorkerDown",  # worker down
    "ClaimsConsumerStalled",  # no successful poll for N minutes
    "ClaimsConsumerLagHigh",  # consumer lag high
    "ClaimsTimeToDrainHigh",  # time to drain over a bound
    "ClaimsDeadLettersIncreasing",
    "ClaimsFailRateAboveBaseline",
    "ClaimsCommitsFailing",
    "ClaimsTransactionsFailing",
    "ClaimsRebalanceStorm",
}


def promtool(binaries: PrometheusBinaries, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binaries.promtool), *args],
        cwd=ALERTS.parent,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)}\n{result.stdout}\n{result.stderr}"


def alerting_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for rule in rules if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_promtool_check_config_accepts_prometheus_yml(prometheus_binaries: PrometheusBinaries) -> None:
    assert_ok(promtool(prometheus_binaries, "check", "config", str(PROMETHEUS_CONFIG)))


def test_promtool_check_rules_accepts_alerts_yml(prometheus_binaries: PrometheusBinaries) -> None:
    assert_ok(promtool(prometheus_binaries, "check", "rules", str(ALERTS)))


def test_promtool_unit_tests_of_the_alerts_pass(prometheus_binaries: PrometheusBinaries) -> None:
    assert_ok(promtool(prometheus_binaries, "test", "rules", str(ALERTS_TEST)))


def test_the_alerts_an_on_call_engineer_needs_are_all_there(alert_rules: list[dict[str, Any]]) -> None:
    names = {rule["alert"] for rule in alerting_rules(alert_rules)}

    assert names >= REQUIRED_ALERTS, f"missing: {sorted(REQUIRED_ALERTS - names)}"


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook_section(
    alert_rules: list[dict[str, Any]],
) -> None:
    headings = [line for line in RUNBOOK.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    anchors = {github_anchor(heading.lstrip("#")) for heading in headings}
    for rule in alerting_rules(alert_rules):
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), f"{name}: no summary"
        assert annotations.get("description"), f"{name}: no description"
        runbook = annotations.get("runbook_url", "")
        path, _, anchor = runbook.partition("#")
        assert path == f"{runbook_base_url()}/ops/RUNBOOK.md", f"{name}: runbook_url {runbook!r} is not the runbook's"
        assert anchor in anchors, f"{name}: ops/RUNBOOK.md has no section #{anchor}"


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_does_not(
    alert_rules: list[dict[str, Any]],
) -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in load_yaml(ALERTS_TEST)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerting_rules(alert_rules)}

    assert names - firing == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested silent"
    assert (firing | silent) - names == set(), "tests of alerts that do not exist"


def test_prometheus_scrapes_the_worker_job_by_dns_on_the_workers_metrics_port() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == WORKER_JOB]
    [discovery] = job["dns_sd_configs"]

    assert discovery["names"] == ["worker"]  # the compose service
    assert discovery["type"] == "A"
    assert discovery["port"] == WorkerSettings.model_fields["metrics_port"].default
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert config["rule_files"] == [ALERTS.name]


def test_alerts_select_the_job_prometheus_gives_the_worker(alert_rules: list[dict[str, Any]]) -> None:
    jobs = {job for rule in alert_rules for job in re.findall(r'job\s*=~?\s*"([^"]*)"', rule["expr"])}

    assert jobs <= {WORKER_JOB}


# --- absolute runbook links from one base address (issue 17, U12) ----------------------------------------------------

RENDER_ALERTS = REPO_ROOT / "scripts" / "render-alerts"


def runbook_base_url() -> str:
    """The one place the runbook's base address is set."""
    return RUNBOOK_BASE_URL.read_text(encoding="utf-8").strip()


def test_the_runbook_base_url_is_an_absolute_address() -> None:
    base = runbook_base_url()

    assert re.fullmatch(r"https?://[^\s/]+(/\S*)?", base), base
    assert not base.endswith("/")


def test_every_runbook_url_of_the_alerts_and_their_tests_is_built_from_the_base(
    alert_rules: list[dict[str, Any]],
) -> None:
    expected = f"{runbook_base_url()}/ops/RUNBOOK.md#"
    urls = [rule["annotations"]["runbook_url"] for rule in alerting_rules(alert_rules)]
    urls += [
        alert["exp_annotations"]["runbook_url"]
        for case in load_yaml(ALERTS_TEST)["tests"]
        for check in case.get("alert_rule_test", [])
        for alert in check.get("exp_alerts", [])
        if "runbook_url" in alert.get("exp_annotations", {})
    ]

    assert urls
    assert [url for url in urls if not url.startswith(expected)] == []


def test_the_committed_alert_files_are_rendered_from_the_base() -> None:
    result = subprocess.run([str(RENDER_ALERTS), "--check"], capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_another_base_renders_alerts_that_promtool_still_tests(
    tmp_path: Path, prometheus_binaries: PrometheusBinaries
) -> None:
    # Given copies of the alert files rendered with an operator's own base address
    for path in (ALERTS, ALERTS_TEST):
        shutil.copy(path, tmp_path / path.name)
    base = "https://git.example.org/billing/claims-worker/-/blob/main"
    rendered = subprocess.run(
        [str(RENDER_ALERTS), "--base-url", base, "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr

    # Then every link uses it, and promtool's unit tests pass on the rendered files
    alerts = [rule for group in load_yaml(tmp_path / ALERTS.name)["groups"] for rule in group["rules"]]
    assert {rule["annotations"]["runbook_url"].split("#")[0] for rule in alerting_rules(alerts)} == {
        f"{base}/ops/RUNBOOK.md"
    }
    result = subprocess.run(
        [str(prometheus_binaries.promtool), "test", "rules", str(tmp_path / ALERTS_TEST.name)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert_ok(result)
