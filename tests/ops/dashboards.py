"""Reading a Grafana dashboard's queries the way Grafana sends them, and the metric names a PromQL query uses.

No PromQL parser is available in Python here, and Prometheus 2.42 has no parse API, so `metric_names` strips
what cannot be a metric name (strings, label matchers, ranges, label lists, function calls, keywords) and keeps
the remaining identifiers. Prometheus itself still parses every query in the live tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Aggregations, set operators and keywords: identifiers that are never metric names even without a `(` after them.
_KEYWORDS = frozenset(
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
        "atan2", "inf", "nan", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABEL_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (no Grafana variables may be left in it)."""
    text = _STRING.sub('""', expr)
    text = _LABEL_MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group(1)
        if name.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # a keyword, or a function / aggregation call
        names.add(name)
    return names


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables (`$name`, `${name}`, `${name:fmt}`, `[[name]]`); unknown ones raise KeyError."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"no value for the Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str
    instant: bool

    def __str__(self) -> str:
        return f"panel {self.panel!r} query {self.ref_id}"


def panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel that is not a row, including the panels of collapsed rows."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    queries = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("hide"):
                continue
            queries.append(
                PanelQuery(panel["title"], target.get("refId", "?"), target["expr"], bool(target.get("instant")))
            )
    return queries


def template_variables(dashboard: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    variables: list[Mapping[str, Any]] = dashboard.get("templating", {}).get("list", [])
    return variables


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*(?P<label>[A-Za-z_]\w*)\s*\)\s*$")


def label_values_query(variable: Mapping[str, Any]) -> tuple[str, str]:
    """(series selector, label) of a `label_values(selector, label)` query variable."""
    query = variable["query"]
    text = query["query"] if isinstance(query, Mapping) else query
    match = _LABEL_VALUES.match(text)
    if match is None:
        raise ValueError(f"variable {variable['name']}: only label_values(selector, label) is supported: {text!r}")
    return match["selector"], match["label"]
