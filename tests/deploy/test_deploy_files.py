"""The files of `deploy/`, checked with what runs on a machine without a container daemon.

Run here: hadolint on the Dockerfile; the compose file against the Compose Specification's
JSON Schema; the Kubernetes manifests against Kubernetes' own schemas (strict: unknown
fields refused) for the oldest and newest versions the validator knows; the Grafana
dashboard's queries against the metrics a live service exposes; the image's health-check
script against live services (HTTP and HTTPS). Not run here: `docker build`, `docker
compose up`, `kubectl apply` (no daemon, no cluster). Each validator is a dev dependency;
a test whose tool is missing is skipped with the reason.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import RunningService

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
MANIFESTS = DEPLOY / "kubernetes"
DASHBOARD = DEPLOY / "grafana" / "configsvc-dashboard.json"
HEALTHCHECK = DEPLOY / "healthcheck.py"
OLDEST_KUBERNETES = "1.29.0"
"""The oldest Kubernetes the manifests are checked against (maintained releases and back)."""


def tool(name: str) -> str:
    """The path of a command installed with the dev extra (next to this Python), or skip."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


# ---- the image ---------------------------------------------------------------------------


def stages(text: str) -> dict[str, list[str]]:
    """The Dockerfile's instructions (continuation lines joined) by stage name."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            name = line.split()[-1] if " AS " in line.upper() else f"stage{len(found)}"
            current = found.setdefault(name, [])
        current.append(line)
    return found


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_slim_non_root_and_checks_its_health() -> None:
    runtime = stages(DOCKERFILE.read_text())["runtime"]
    assert re.match(r"FROM python:\$\{PYTHON_VERSION\}-slim AS runtime", runtime[0])
    users = [line for line in runtime if line.startswith("USER ")]
    assert users == ["USER 10001:10001"]  # numeric: Kubernetes can verify runAsNonRoot
    assert any("HEALTHCHECK" in line and "configsvc-healthcheck" in line for line in runtime)
    assert 'CMD ["serve"]' in runtime
    build = stages(DOCKERFILE.read_text())["build"]
    assert any('".[server]"' in line for line in build)
    # what the build copies is in the build context its ignore file leaves
    kept = {
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for line in build + runtime + stages(DOCKERFILE.read_text())["gateway"]:
        if line.startswith("COPY ") and "--from" not in line:
            sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
            for source in sources:
                assert source.rstrip("/") in kept, f"{source} is left out of the context"
                assert (ROOT / source).exists(), source


def run_healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_health_check_script_probes_the_service(service: RunningService) -> None:
    port = service.url.rsplit(":", 1)[1]
    assert run_healthcheck({"CONFIGSVC_PORT": port}).returncode == 0
    down = run_healthcheck({"CONFIGSVC_PORT": "1"})
    assert down.returncode == 1 and "configsvc health check" in down.stderr


def test_the_health_check_script_speaks_https(tmp_path: Path, etcd: Any) -> None:
    from tls.tlstools import Pki, start_https_service

    pki = Pki.create(tmp_path / "pki")
    running = start_https_service(pki, etcd.client_url)
    try:
        port = running.url.rsplit(":", 1)[1]
        env = {"CONFIGSVC_PORT": port, "CONFIGSVC_TLS_CERT": str(pki.server.cert)}
        assert run_healthcheck(env).returncode == 0
        assert run_healthcheck({"CONFIGSVC_PORT": port}).returncode == 1  # plain: no
    finally:
        running.stop()


# ---- compose -----------------------------------------------------------------------------


def compose_schema() -> dict[str, Any]:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema ships the Compose schema")
    from importlib.resources import files

    vendored = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema: dict[str, Any] = json.loads(vendored.read_text())
    return schema


def schema_errors(schema: dict[str, Any], document: Any) -> list[str]:
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_follows_the_compose_specification() -> None:
    schema = compose_schema()
    compose = yaml.safe_load(COMPOSE.read_text())
    assert schema_errors(schema, compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["depends_on"]["seed"]["condition"] = "whenever"
    assert schema_errors(schema, broken), "the schema must catch a broken file"


def test_compose_runs_three_etcd_members_two_instances_and_the_gateway() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    members = sorted(name for name in services if name.startswith("etcd-"))
    assert members == ["etcd-0", "etcd-1", "etcd-2"]
    for name in members:
        environment = services[name]["environment"]
        cluster = dict(
            part.split("=", 1) for part in environment["ETCD_INITIAL_CLUSTER"].split(",")
        )
        assert sorted(cluster) == members
        assert environment["ETCD_NAME"] == name
        assert "healthcheck" in services[name]
    instances = [name for name in services if name.startswith("configsvc-")]
    assert len(instances) == 2
    tokens = {services[name]["environment"]["CONFIGSVC_ADMIN_TOKEN"] for name in instances}
    assert len(tokens) == 1 and "CONFIGSVC_ADMIN_TOKEN" in tokens.pop()  # one, shared
    for name in instances:
        endpoints = services[name]["environment"]["CONFIGSVC_ETCD"].split(",")
        assert [url.split("//")[1].split(":")[0] for url in endpoints] == members
    gateway = services["gateway"]
    assert gateway["depends_on"]["seed"]["condition"] == "service_completed_successfully"
    assert "configsvc-1" in gateway["environment"]["CONFIGSVC_URL"]
    assert "configsvc-2" in gateway["environment"]["CONFIGSVC_URL"]
    for volume in services["seed"]["volumes"]:
        assert (DEPLOY / volume.split(":")[0]).is_dir(), volume


def test_compose_seed_is_the_example_config_at_compose_host_names() -> None:
    example = yaml.safe_load((ROOT / "examples/llm_gateway/config/chat-models.yaml").read_text())
    seeded = yaml.safe_load((DEPLOY / "compose/seed/chat-models.yaml").read_text())
    hosts = {"local-34b": "http://fake-local:9001/v1", "hosted": "http://fake-hosted:9002/v1"}
    for endpoint, base_url in hosts.items():
        assert seeded["spec"]["endpoints"][endpoint]["base_url"] == base_url
        seeded["spec"]["endpoints"][endpoint]["base_url"] = example["spec"]["endpoints"][endpoint][
            "base_url"
        ]
    assert seeded == example


# ---- Kubernetes --------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests() if doc["kind"] == kind}


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, "latest"])
def test_manifests_follow_the_kubernetes_schemas(version: str) -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate")
    target = validate.latest_version() if version == "latest" else version
    for document in manifests():
        validate.validate(document, target, strict=True)  # raises on any problem
    broken = copy.deepcopy(by_kind("Deployment")["configsvc"])
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, target, strict=True)
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        path.name for path in MANIFESTS.glob("*.yaml") if path.name != "kustomization.yaml"
    )


def test_configsvc_deployment_probes_and_selectors() -> None:
    deployment = by_kind("Deployment")["configsvc"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    ports = {port["name"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "http" in ports
    assert deployment["spec"]["replicas"] >= 2
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {item["name"]: item for item in container["env"]}
    assert env["CONFIGSVC_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "token"
    selector = deployment["spec"]["selector"]["matchLabels"]
    for matched in (
        selector,
        by_kind("Service")["configsvc"]["spec"]["selector"],
        by_kind("PodDisruptionBudget")["configsvc"]["spec"]["selector"]["matchLabels"],
    ):
        assert matched.items() <= labels.items(), matched


def test_etcd_statefulset_forms_one_cluster() -> None:
    statefulset = by_kind("StatefulSet")["etcd"]
    replicas = statefulset["spec"]["replicas"]
    pod = statefulset["spec"]["template"]
    env = {item["name"]: item.get("value") for item in pod["spec"]["containers"][0]["env"]}
    cluster = dict(part.split("=", 1) for part in env["ETCD_INITIAL_CLUSTER"].split(","))
    assert sorted(cluster) == [f"etcd-{n}" for n in range(replicas)]
    service = statefulset["spec"]["serviceName"]
    assert all(url == f"http://{name}.{service}:2380" for name, url in cluster.items())
    assert by_kind("Service")[service]["spec"]["publishNotReadyAddresses"] is True
    labels = pod["metadata"]["labels"]
    for matched in (
        by_kind("Service")["etcd-client"]["spec"]["selector"],
        by_kind("PodDisruptionBudget")["etcd"]["spec"]["selector"]["matchLabels"],
        by_kind("NetworkPolicy")["etcd"]["spec"]["podSelector"]["matchLabels"],
    ):
        assert matched.items() <= labels.items(), matched
    # configsvc's pods are among those the network policy lets in
    configsvc_labels = by_kind("Deployment")["configsvc"]["spec"]["template"]["metadata"]
    allowed = [
        rule["from"][0]["podSelector"]["matchLabels"]
        for rule in by_kind("NetworkPolicy")["etcd"]["spec"]["ingress"]
    ]
    assert any(rule.items() <= configsvc_labels["labels"].items() for rule in allowed)


# ---- Grafana -----------------------------------------------------------------------------

METRIC = re.compile(r"\b(configsvc_[a-z_]+)\b")
BY_LABELS = re.compile(r"\bby \(([^)]*)\)")


def exposition(service: RunningService) -> dict[str, set[str]]:
    """Each metric family's sample names in `/metrics`, with the label names seen on them."""
    with service.client() as api:
        api.put(
            "/v1/configs/prod/limits",
            json={"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": 1}}}},
        )
        text = httpx.get(f"{service.url}/metrics", timeout=10).text
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, rest = line.partition("{")
        name = name.split()[0]
        found = labels.setdefault(name, set())
        if rest:
            found.update(re.findall(r'(\w+)="', rest.split("}")[0]))
    return labels


def test_dashboard_queries_name_metrics_the_service_exposes(service: RunningService) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exposed = exposition(service)
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 8
    used = set()
    for expr in expressions:
        names = METRIC.findall(expr)
        assert names, expr
        for name in names:
            assert name in exposed, f"{name} is not in /metrics"
            used.add(name.removesuffix("_bucket").removesuffix("_total"))
            for group in BY_LABELS.findall(expr):
                for label in (part.strip() for part in group.split(",")):
                    assert label in exposed[name] | {"instance", "job"}, (name, label)
    assert len(used) >= 6  # requests, latency, store latency, streams, events, fallbacks
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
