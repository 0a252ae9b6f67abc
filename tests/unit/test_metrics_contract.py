"""The metrics contract: names and labels the code declares, and what the alert rules
and dashboards may use of them (read from the code, not from a hand-kept list)."""

from __future__ import annotations

import re

from tests import metrics_contract as contract

ROOT = contract.ROOT


def test_the_alerts_the_issue_asks_for_exist() -> None:
    alerts = {rule["alert"] for rule in contract.alert_rules()}
    assert {
        "AbmServiceDown",
        "AbmBrokerUnreachable",
        "AbmConsumerLagGrowing",
        "AbmDeadLetterRate",
        "AbmIngestErrorRate",
        "AbmIngestLatencyHigh",
        "AbmSourceStale",
        "AbmNoEvents",
    } <= alerts


def test_every_alert_has_a_severity_and_a_runbook_section_that_exists() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    anchors = {_anchor(line) for line in operations.splitlines() if line.startswith("#")}
    for rule in contract.alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/operations.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in {path}"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


# ---- metrics contract ----------------------------------------------------------------

BOUNDED_LABELS = frozenset(
    {"type", "outcome", "route", "status", "group", "topic", "partition", "reason", "kind"}
    | {"stage", "tier", "from_stage", "to_stage", "from_tier", "to_tier", "transition"}
    | {"version", "service"}  # build info: one series per process
    | {"source"}  # intent sources: the configured names, every other one is "other"
    | {"provenance"}  # account evidence: the envelope's AccountProvenance values and "none"
    | {"reader"}  # who read the change log for the streams: "tail" or "stream"
)


def test_metric_names_follow_the_convention_and_labels_are_bounded() -> None:
    known = contract.known_metrics()
    assert len(known) >= 25
    services = "build|ingest|consumer|funnel|intent|stitch|api"
    for name, metric in known.items():
        assert re.fullmatch(rf"abm_({services})(_[a-z0-9]+)*", name)
        assert metric.labels <= BOUNDED_LABELS, f"{name}: {metric.labels - BOUNDED_LABELS}"


def test_every_known_metric_is_on_a_dashboard_or_in_an_alert() -> None:
    used = {contract.series_names()[series].name for series in contract.used_series()}
    assert used == contract.known_metrics().keys()
