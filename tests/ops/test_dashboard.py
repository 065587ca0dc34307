"""The Grafana dashboard, statically: the panels ops asked for, template variables, data source, layout.

That every query parses and returns data from a real worker is tests/ops/test_live_stack.py's job.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ops.conftest import GRAFANA_DIR, load_yaml
from tests.ops.dashboards import (
    label_values_query,
    metric_names,
    panel_queries,
    panels,
    substitute,
    template_variables,
)

pytestmark = pytest.mark.timeout(30)

# What the issue asks for -> a panel title (case-insensitive) and a metric its queries must use.
REQUIRED_PANELS = {
    "throughput by outcome": ("Throughput by outcome", "claims_verdicts_total"),
    "fail rate": ("Fail rate", "claims_verdicts_total"),
    "findings by rule (top N)": ("Findings by rule (top 10)", "claims_findings_total"),
    "dead letters by reason": ("Dead letters by reason", "claims_dead_letters_total"),
    "consumer lag per partition": ("Consumer lag per partition", "claims_consumer_lag_records"),
    "time to drain": ("Time to drain", "claims_consumed_total"),
    "validation latency": ("Validation latency", "claims_validation_duration_seconds_bucket"),
    "end-to-end latency": ("End-to-end latency", "claims_end_to_end_latency_seconds_bucket"),
    "batch size": ("Batch size", "claims_batch_records_bucket"),
    "rebalances": ("Rebalances", "claims_rebalances_total"),
    "assigned partitions per replica": ("Assigned partitions per replica", "claims_assigned_partitions"),
    "commit and transaction outcomes": ("Commits and transactions", "claims_transactions_total"),
    "replicas up": ("Replicas up", "up"),
    "build info": ("Build info", "claims_build_info"),
    "claim history restores": ("History restores", "claims_history_restoring_partitions"),
    "claim history restore rate": ("History restore rate", "claims_history_restored_records_total"),
    "claim history store size": ("History store entries", "claims_history_store_entries"),
    "claim history throughput": ("Claims through claim history", "claims_history_deferred_total"),
}
VALUES = {"job": "claims-worker", "instance": ".*", "topic": ".*", "datasource": "x", "__rate_interval": "1m",
          "__range": "1h", "__interval": "15s"}  # fmt: skip


def panel_by_title(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    matching = [panel for panel in panels(dashboard) if panel["title"].lower() == title.lower()]
    assert len(matching) == 1, f"{len(matching)} panels titled {title!r}"
    return dict(matching[0])


@pytest.mark.parametrize("what", sorted(REQUIRED_PANELS))
def test_dashboard_has_the_panel_ops_asked_for(dashboard: dict[str, Any], what: str) -> None:
    title, metric = REQUIRED_PANELS[what]
    panel = panel_by_title(dashboard, title)
    used = set().union(*(metric_names(substitute(target["expr"], VALUES)) for target in panel["targets"]))

    assert metric in used, f"{title}: uses {sorted(used)}"


@pytest.mark.parametrize("title", ["Validation latency", "End-to-end latency"])
def test_latency_panels_show_p50_p95_and_p99(dashboard: dict[str, Any], title: str) -> None:
    exprs = [target["expr"] for target in panel_by_title(dashboard, title)["targets"]]
    quantiles = {float(q) for expr in exprs for q in re.findall(r"histogram_quantile\(\s*([0-9.]+)", expr)}

    assert quantiles == {0.5, 0.95, 0.99}


def test_findings_by_rule_shows_the_top_n_rules(dashboard: dict[str, Any]) -> None:
    [target] = panel_by_title(dashboard, "Findings by rule (top 10)")["targets"]

    assert re.match(r"topk\(\s*10\s*,", target["expr"])
    assert "by (rule_id)" in target["expr"]


def test_template_variables_for_instance_and_topic_filter_the_panels(dashboard: dict[str, Any]) -> None:
    variables = {variable["name"]: variable for variable in template_variables(dashboard)}
    queries = panel_queries(dashboard)

    assert {"instance", "topic"} <= set(variables)
    assert label_values_query(variables["instance"])[1] == "instance"
    assert label_values_query(variables["topic"])[1] == "topic"
    unfiltered = [str(query) for query in queries if 'instance=~"$instance"' not in query.expr]
    assert unfiltered == [], "every panel follows the instance selection"
    lag_queries = [query for query in queries if "claims_consumer_lag_records" in query.expr]
    assert lag_queries
    assert all('topic=~"$topic"' in query.expr for query in lag_queries)


def test_every_query_uses_only_defined_variables(dashboard: dict[str, Any]) -> None:
    defined = {variable["name"] for variable in template_variables(dashboard)}
    builtin = {"__rate_interval", "__range", "__interval"}
    values = dict.fromkeys(defined | builtin, "x")

    for query in panel_queries(dashboard):
        substitute(query.expr, values)  # raises KeyError on an undefined variable


def test_panels_use_the_provisioned_prometheus_data_source(dashboard: dict[str, Any]) -> None:
    [datasource] = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    [variable] = [variable for variable in template_variables(dashboard) if variable["type"] == "datasource"]

    assert variable["query"] == datasource["type"] == "prometheus"
    assert variable["current"]["value"] == datasource["uid"]
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_panels_have_unique_ids_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    cells: dict[tuple[int, int], str] = {}

    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_panel_says_what_it_shows(dashboard: dict[str, Any]) -> None:
    assert [panel["title"] for panel in panels(dashboard) if not panel.get("description")] == []


# --- the metric-name reader the live test relies on -------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b"}[5m])))', {"x_bucket"}),
        ("sum(a_total) / (sum(rate(b_total[1m])) > 0)\nor\nsum(a_total) == 0", {"a_total", "b_total"}),
        ('topk(10, sum by (rule_id) (increase(c_total{job=~"j|k"}[1h])))', {"c_total"}),
        ('time() - (d_seconds{i=~".*"} > 0)', {"d_seconds"}),
        ("rate(e_total[5m] offset 1h) * on (instance) group_left (version) f_info", {"e_total", "f_info"}),
        ("1e-9 + up", {"up"}),
        (
            "job:claims_fail_ratio:ratio_rate5m > 2 * avg_over_time(job:claims_fail_ratio:ratio_rate5m[1d])",
            {"job:claims_fail_ratio:ratio_rate5m"},
        ),
    ],
)
def test_metric_names_finds_every_selected_metric_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_substitute_fills_every_variable_syntax_and_rejects_unknown_ones() -> None:
    values = {"a": "1", "b": "2", "c": "3"}

    assert substitute('x{i=~"$a"}[${b}] ${c:regex} [[a]]', values) == 'x{i=~"1"}[2] 3 1'
    with pytest.raises(KeyError):
        substitute("$missing", values)
