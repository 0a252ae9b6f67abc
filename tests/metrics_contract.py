"""The metrics contract between the services and deploy/ (dashboards, alert rules).

Known metrics are read from the code (every ``abm_`` collector of ``services.kit.metrics``,
where all service metrics are declared), never from a hand-kept list; used metrics are read
from the Grafana dashboards and the Prometheus alert rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

from services.intent import metrics as intent_metrics
from services.kit import metrics

# Where metrics are declared: the shared module, and the few a service keeps to itself.
METRIC_MODULES = (metrics, intent_metrics)

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"

METRIC_NAME = re.compile(r"\babm_\w+")
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
}


@dataclass(frozen=True)
class KnownMetric:
    name: str  # the family name, as ``describe()`` reports it
    kind: str
    labels: frozenset[str]

    @property
    def series(self) -> tuple[str, ...]:
        return tuple(f"{self.name}{suffix}" for suffix in _SUFFIXES[self.kind])


def known_metrics() -> dict[str, KnownMetric]:
    """Family name -> metric, for every abm_ collector the services declare."""
    found = {}
    collectors = [c for module in METRIC_MODULES for c in vars(module).values()]
    for collector in collectors:
        if not isinstance(collector, MetricWrapperBase):
            continue
        (family,) = collector.describe()
        labels = frozenset(collector._labelnames)  # no public accessor
        if collector is metrics.BUILD_INFO:
            labels = frozenset(metrics.BUILD_INFO_KEYS)  # an Info's labels are its keys
        if family.name.startswith("abm_"):
            found[family.name] = KnownMetric(family.name, family.type, labels)
    return found


def series_names() -> dict[str, KnownMetric]:
    """Every series name Prometheus can hold for a known metric -> that metric."""
    return {series: m for m in known_metrics().values() for series in m.series}


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def query_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Panels that run queries, including those nested in collapsed rows."""
    found = []
    for panel in panels:
        found += query_panels(panel.get("panels", []))
        if panel["type"] != "row":
            found.append(panel)
    return found


def dashboard_expressions() -> list[str]:
    return [
        target["expr"]
        for board in dashboards().values()
        for panel in query_panels(board["panels"])
        for target in panel["targets"]
    ]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def used_series() -> set[str]:
    """Series names the dashboards and alert rules query."""
    expressions = dashboard_expressions() + [rule["expr"] for rule in alert_rules()]
    return {name for expr in expressions for name in METRIC_NAME.findall(expr)}
