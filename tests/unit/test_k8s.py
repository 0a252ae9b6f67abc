"""deploy/k8s/ manifests, validated against the Kubernetes OpenAPI schemas bundled by the
``kubernetes-validate`` package (offline: no cluster, no network), then checked for what
a cluster would only reveal at run time: probes, ports, settings names, scaling bounds."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

from schemas import topics
from tests.unit.test_deploy import SETTINGS_MODULES, settings_env_names

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"
SERVICES = {"ingest": "ABM_INGEST_PORT", "api": "ABM_API_PORT"}
CONSUMERS = {
    "intent": ("ABM_INTENT_METRICS_PORT", (topics.EVENTS,)),
    "funnel": ("ABM_FUNNEL_METRICS_PORT", (topics.EVENTS, topics.SURGES)),
    "stitch": ("ABM_STITCH_METRICS_PORT", (topics.EVENTS,)),
}
PORT_SETTINGS = {**SERVICES, **{name: port for name, (port, _) in CONSUMERS.items()}}


def documents() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(K8S.glob("*.yml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def find(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def settings() -> dict[str, str]:
    config_map: dict[str, str] = find("ConfigMap", "abm-settings")["data"]
    return config_map


@pytest.mark.parametrize(
    "document", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_manifest_is_valid_against_the_kubernetes_schema(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    broken = find("Deployment", "abm-api")
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def container(name: str) -> dict[str, Any]:
    deployment = find("Deployment", f"abm-{name}")
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


@pytest.mark.parametrize("name", PORT_SETTINGS)
def test_service_runs_its_subcommand_with_probes_on_its_port(name: str) -> None:
    main = container(name)
    port = int(settings()[PORT_SETTINGS[name]])
    (declared,) = main["ports"]
    assert main["args"] == [name]
    assert declared["containerPort"] == port
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": declared["name"]}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": declared["name"]}
    assert {"cpu", "memory"} <= main["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= main["resources"]["limits"].keys()
    refs = [next(iter(source.values()))["name"] for source in main["envFrom"]]
    assert refs == ["abm-settings", "abm-secrets"]
    service = find("Service", f"abm-{name}")
    assert (
        service["spec"]["selector"]
        == find("Deployment", f"abm-{name}")["spec"]["selector"]["matchLabels"]
    )
    assert service["spec"]["ports"][0]["port"] == port


@pytest.mark.parametrize("name", CONSUMERS)
def test_consumers_autoscale_but_never_beyond_their_partitions(name: str) -> None:
    autoscaler = find("HorizontalPodAutoscaler", f"abm-{name}")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == f"abm-{name}"
    partitions = min(topic.partitions for topic in CONSUMERS[name][1])
    assert 1 <= autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]
    assert autoscaler["spec"]["maxReplicas"] <= partitions


def test_every_service_uses_one_image_and_stops_gracefully() -> None:
    deployments = [d for d in documents() if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {f"abm-{n}" for n in PORT_SETTINGS}
    images = {c["image"] for d in deployments for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1
    for deployment in deployments:
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 15


def test_the_migration_job_migrates_then_creates_topics() -> None:
    pod = find("Job", "abm-migrate")["spec"]["template"]["spec"]
    steps = [c["args"] for c in pod["initContainers"]] + [c["args"] for c in pod["containers"]]
    assert steps == [["migrate"], ["topics"]]


def test_every_abm_variable_is_a_real_setting() -> None:
    classes = {
        obj
        for module in map(importlib.import_module, SETTINGS_MODULES)
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj is not BaseSettings
    }
    known = set().union(*(settings_env_names(cls) for cls in classes))
    secret = find("Secret", "abm-secrets")["stringData"]
    assert (settings().keys() | secret.keys()) - known == set()
    assert "ABM_DATABASE_URL" in secret
