"""The Prometheus files pass Prometheus's own checker, ``promtool`` (Debian's package)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests import metrics_contract as contract

pytestmark = pytest.mark.integration

PROMETHEUS_YML = contract.DEPLOY / "prometheus" / "prometheus.yml"


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found; `make test` installs Debian's prometheus package"
    return subprocess.run(
        [binary, *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_pass_promtool() -> None:
    result = promtool("check", "rules", str(contract.ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(contract.alert_rules())} rules found" in result.stdout


def test_scrape_config_passes_promtool_with_its_rule_files(tmp_path: Path) -> None:
    """prometheus.yml names the rule file where compose mounts it (/etc/prometheus/...);
    a copy placed beside a copy of the rules, as in the container, is checked whole."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    for mounted in config["rule_files"]:
        shutil.copy(contract.ALERTS, tmp_path / Path(mounted).name)
    config["rule_files"] = [Path(mounted).name for mounted in config["rule_files"]]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_alerts_fire_on_synthetic_series() -> None:
    """deploy/prometheus/alerts_test.yml: each alert fires when it should, and not before."""
    result = promtool("test", "rules", str(contract.DEPLOY / "prometheus" / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
