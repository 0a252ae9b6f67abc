"""Static checks of deploy/: compose wiring, Dockerfile, Prometheus and Grafana files.

No Docker engine runs in CI, so these tests are what keeps the deploy files honest. They
read files only: no network, no containers.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from tests import metrics_contract as contract

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# Long-running abm services: name (= `abm` subcommand) -> (host setting, port setting).
ABM_SERVICES = {
    "ingest": ("ABM_INGEST_HOST", "ABM_INGEST_PORT"),
    "api": ("ABM_API_HOST", "ABM_API_PORT"),
    "intent": ("ABM_INTENT_METRICS_HOST", "ABM_INTENT_METRICS_PORT"),
    "funnel": ("ABM_FUNNEL_METRICS_HOST", "ABM_FUNNEL_METRICS_PORT"),
    "stitch": ("ABM_STITCH_METRICS_HOST", "ABM_STITCH_METRICS_PORT"),
}
ONE_SHOTS = ("migrate", "topics")
ABM_CONTAINERS = (*ABM_SERVICES, *ONE_SHOTS)

# Start order: service -> {dependency: condition}.
DEPENDS_ON = {
    "migrate": {"postgres": "service_healthy"},
    "topics": {"kafka": "service_healthy"},
    **{
        name: {
            "migrate": "service_completed_successfully",
            "topics": "service_completed_successfully",
        }
        for name in ABM_SERVICES
    },
    "grafana": {"prometheus": "service_healthy"},
}

SETTINGS_MODULES = (
    "services.kit.settings",
    "services.ingest.settings",
    "services.api.settings",
    "services.intent.settings",
    "services.funnel.settings",
    "services.stitch.settings",
)

_COMPOSE_VAR = re.compile(r"\$\$|\$\{\w+(?::?-([^}]*))?\}")
_HEALTHZ_URL = re.compile(r"https?://[\w.-]+:(\d+)/healthz\b")
_BY_LABELS = re.compile(r"\bby\s*\(([^)]*)\)")


def interpolate(value: object) -> str:
    """Resolve compose `${VAR:-default}` as `docker compose` would with VAR unset."""

    def resolve(match: re.Match[str]) -> str:
        return "$" if match.group(0) == "$$" else match.group(1) or ""

    return _COMPOSE_VAR.sub(resolve, str(value))


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((DEPLOY / relative).read_text())


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    found: dict[str, Any] = load_yaml("docker-compose.yml")["services"]
    return found


def env_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "use the mapping form of `environment`"
    return {key: interpolate(value) for key, value in environment.items()}


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Relative source -> container target, for the bind mounts of a service."""
    mounts = (volume.split(":") for volume in service.get("volumes", []))
    return {m[0]: m[1] for m in mounts if m[0].startswith(".")}


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


# ---- compose -------------------------------------------------------------------------


def test_stack_has_every_service_and_no_zookeeper(services: dict[str, Any]) -> None:
    expected = {"kafka", "postgres", "prometheus", "grafana", *ABM_CONTAINERS}
    assert expected <= services.keys()
    for name, service in services.items():
        assert "zookeeper" not in f"{name} {service.get('image', '')}".lower()


def test_kafka_is_a_single_kraft_node(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    env = env_of(kafka)
    repository, _, tag = kafka["image"].partition(":")
    assert repository == "apache/kafka"
    assert tuple(int(part) for part in tag.split(".")[:3]) >= (3, 8, 0)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"].split(",")
    assert env["CLUSTER_ID"]
    assert not any("ZOOKEEPER" in key for key in env)
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-broker-api-versions" in healthcheck_text(kafka)


def test_postgres_has_a_volume_credentials_and_pg_isready(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"} <= env_of(postgres).keys()
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in healthcheck_text(postgres)


def test_abm_containers_share_one_image(services: dict[str, Any]) -> None:
    builds = {repr(services[name].get("build")) for name in ABM_CONTAINERS}
    images = {services[name].get("image") for name in ABM_CONTAINERS}
    assert len(builds) == 1
    assert len(images) == 1
    build = services["api"]["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]) == DEPLOY / "Dockerfile"


@pytest.mark.parametrize("name", ABM_CONTAINERS)
def test_container_runs_its_abm_subcommand(services: dict[str, Any], name: str) -> None:
    assert services[name]["command"] == [name]
    assert "entrypoint" not in services[name], "the image's `abm` entrypoint must be used"


@pytest.mark.parametrize("name", ABM_CONTAINERS)
def test_container_reaches_kafka_and_postgres(services: dict[str, Any], name: str) -> None:
    env = env_of(services[name])
    kafka_env = env_of(services["kafka"])
    assert env["ABM_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert f"PLAINTEXT://{env['ABM_KAFKA_BOOTSTRAP']}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["ABM_KAFKA_ENABLE_IDEMPOTENCE"] == "true"

    url = urlsplit(env["ABM_DATABASE_URL"])
    postgres_env = env_of(services["postgres"])
    assert url.scheme == "postgresql+asyncpg"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert url.username == postgres_env["POSTGRES_USER"]
    assert url.password == postgres_env["POSTGRES_PASSWORD"]
    assert url.path == f"/{postgres_env['POSTGRES_DB']}"
    assert env["ABM_DATABASE_URL"] == "postgresql+asyncpg://abm:abm@postgres:5432/abm"


@pytest.mark.parametrize("name", ABM_SERVICES)
def test_service_port_matches_its_settings(services: dict[str, Any], name: str) -> None:
    service = services[name]
    host_var, port_var = ABM_SERVICES[name]
    env = env_of(service)
    port = env[port_var]
    assert env[host_var] == "0.0.0.0"
    assert [p.split(":")[-1] for p in service["ports"]] == [port]
    assert _HEALTHZ_URL.findall(healthcheck_text(service)) == [port]
    assert service["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", DEPENDS_ON)
def test_start_order(services: dict[str, Any], name: str) -> None:
    depends_on = services[name]["depends_on"]
    conditions = {dep: spec["condition"] for dep, spec in depends_on.items()}
    assert conditions == DEPENDS_ON[name]


def test_bind_mounts_exist_and_land_where_configured(services: dict[str, Any]) -> None:
    for service in services.values():
        for source in bind_mounts(service):
            assert (DEPLOY / source).exists(), source
    prometheus = bind_mounts(services["prometheus"])
    assert prometheus["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    grafana = bind_mounts(services["grafana"])
    assert grafana["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = load_yaml("grafana/provisioning/dashboards/abm.yml")["providers"][0]
    assert grafana["./grafana/dashboards"] == provider["options"]["path"]


def settings_env_names(cls: type[BaseSettings]) -> set[str]:
    """Environment names a pydantic-settings class reads (prefix + field, or an alias)."""
    prefix = cls.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        names.add((alias or field.alias or f"{prefix}{field_name}").upper())
    return names


def test_every_abm_variable_is_a_real_setting(services: dict[str, Any]) -> None:
    modules = [pytest.importorskip(name) for name in SETTINGS_MODULES]
    classes = {
        obj
        for module in modules
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj is not BaseSettings
    }
    assert classes, "no BaseSettings subclasses found in the settings modules"
    known = set().union(*(settings_env_names(cls) for cls in classes))
    used = {key for service in services.values() for key in env_of(service)}
    assert {key for key in used if key.startswith("ABM_")} - known == set()


# ---- Dockerfile ----------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions of deploy/Dockerfile, grouped by stage, as (KEYWORD, arguments)."""
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    stages: list[list[tuple[str, str]]] = []
    for line in text.replace("\\\n", " ").splitlines():
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if keyword and stages:
            stages[-1].append((keyword.upper(), " ".join(arguments.split())))
    return stages


def instructions(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [arguments for kw, arguments in stage if kw == keyword]


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        assert instructions(stage, "FROM")[0].startswith("python:3.11-slim")


def test_dockerfile_builds_and_installs_the_project() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    assert "abm" in project["project"]["scripts"]
    build, runtime = dockerfile_stages()[0], dockerfile_stages()[-1]

    copied = " ".join(instructions(build, "COPY"))
    for path in ("pyproject.toml", *packages):
        assert re.search(rf"(^|\s){path}(\s|$)", copied), f"{path} is not copied"
    assert any("pip wheel" in run and run.endswith(" .") for run in instructions(build, "RUN"))
    installs = [run for run in instructions(runtime, "RUN") if "pip install" in run]
    assert any(run.endswith(f" {project['project']['name']}") for run in installs)


def test_runtime_runs_abm_as_a_non_root_user(services: dict[str, Any]) -> None:
    runtime = dockerfile_stages()[-1]
    keywords = [keyword for keyword, _ in runtime]
    assert json.loads(instructions(runtime, "ENTRYPOINT")[-1]) == ["abm"]
    user = instructions(runtime, "USER")[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")

    env = dict(pair.split("=", 1) for run in instructions(runtime, "ENV") for pair in run.split())
    assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONUNBUFFERED"] == "1"
    exposed = set(" ".join(instructions(runtime, "EXPOSE")).split())
    ports = {env_of(services[name])[ABM_SERVICES[name][1]] for name in ABM_SERVICES}
    assert exposed == ports == {"8000", "8001", "8002", "8003", "8004"}


# ---- Prometheus ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ABM_SERVICES)
def test_prometheus_scrapes_each_service(services: dict[str, Any], name: str) -> None:
    config = load_yaml("prometheus/prometheus.yml")
    port = env_of(services[name])[ABM_SERVICES[name][1]]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == name]
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert targets == [f"{name}:{port}"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "15s"


def test_prometheus_alert_rules_are_mounted_and_use_known_metrics(
    services: dict[str, Any],
) -> None:
    config = load_yaml("prometheus/prometheus.yml")
    mounted = {target: source for source, target in bind_mounts(services["prometheus"]).items()}
    rules = [
        rule
        for rule_file in config["rule_files"]
        for group in load_yaml(mounted[rule_file])["groups"]
        for rule in group["rules"]
    ]
    assert rules == contract.alert_rules()
    for rule in rules:
        assert set(contract.METRIC_NAME.findall(rule["expr"])) <= contract.series_names().keys()


# ---- Grafana -------------------------------------------------------------------------


def test_grafana_datasource_is_the_compose_prometheus(services: dict[str, Any]) -> None:
    (source,) = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert (source["type"], source["uid"]) == ("prometheus", "prometheus")
    url = urlsplit(source["url"])
    assert url.hostname in services
    assert url.port == 9090


def test_one_dashboard_per_concern() -> None:
    boards = contract.dashboards()
    assert {"ingest.json", "pipeline.json", "funnel.json", "intent.json"} <= boards.keys()
    assert len({board["uid"] for board in boards.values()}) == len(boards)


@pytest.mark.parametrize("name", sorted(contract.dashboards()))
def test_dashboard_panels_query_the_prometheus_datasource(name: str) -> None:
    board = contract.dashboards()[name]
    panels = contract.query_panels(board["panels"])
    assert board["schemaVersion"] == 39
    assert board["uid"]
    assert panels
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == "prometheus"
            assert target["expr"].strip()


@pytest.mark.parametrize("name", sorted(contract.dashboards()))
def test_dashboard_uses_only_known_metrics_and_labels(name: str) -> None:
    series = contract.series_names()
    for panel in contract.query_panels(contract.dashboards()[name]["panels"]):
        for target in panel["targets"]:
            names = contract.METRIC_NAME.findall(target["expr"])
            assert names, f"{panel['title']}: no abm metric in {target['expr']}"
            assert set(names) <= series.keys(), f"{panel['title']}: {names}"
            labels = frozenset({"le"}).union(*(series[n].labels for n in names))
            for group in _BY_LABELS.findall(target["expr"]):
                assert {label.strip() for label in group.split(",")} <= labels, group
