"""deploy/: the Dockerfile's rules, ``docker compose config``, and every
Kubernetes manifest against the offline schemas of kubernetes-validate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.33.0"
"""The Kubernetes version the manifests are checked against."""


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    return parser


def _instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


def test_dockerfile_is_multi_stage_slim_311(dockerfile) -> None:
    bases = _instructions(dockerfile, "FROM")
    assert len(bases) >= 2, "multi-stage"
    assert all(b.split()[0] == "python:3.11-slim" for b in bases), bases
    assert bases[-1].split()[-1] == "runtime"


def test_dockerfile_runs_as_non_root_with_healthcheck(dockerfile) -> None:
    runtime = dockerfile.structure[
        max(
            i for i, x in enumerate(dockerfile.structure) if x["instruction"] == "FROM"
        ) :
    ]
    users = [x["value"] for x in runtime if x["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [x["value"] for x in runtime if x["instruction"] == "HEALTHCHECK"]
    assert health and "/healthz" in health[0]
    cmd = json.loads(_instructions(dockerfile, "CMD")[-1])
    assert cmd[:3] == ["gunicorn", "--config", "deploy/gunicorn.conf.py"]
    assert cmd[-1] == "wsgi:app"


def test_dockerfile_installs_runtime_requirements_only_and_bakes_the_model(
    dockerfile,
) -> None:
    runs = " ".join(
        _instructions(dockerfile, "RUN") + _instructions(dockerfile, "COPY")
    )
    assert "requirements.txt" in runs
    for banned in ("torch", "requirements-train", "requirements-test"):
        assert banned not in runs, banned
    pins = [
        line.split("==")[0].strip().lower()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "torch" not in pins and "transformers" not in pins
    copies = _instructions(dockerfile, "COPY")
    assert any(c.split()[-2:] == ["models/", "/app/models/"] for c in copies)
    # Every package the runtime imports is copied; what it copies exists.
    for package in ("core/", "connectors/", "workers/", "webapp/", "wsgi.py"):
        assert any(package in c for c in copies), package
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    for c in copies:
        if "--from=" in c:
            continue
        source = c.split()[-2]
        assert (REPO / source).exists(), source
        assert f"!{source}" in ignore, f"{source} is not in the build context"


def test_model_in_image_is_the_default_model() -> None:
    from core.config import Settings

    default = Settings().default_model
    found = [json.loads(p.read_text()) for p in (REPO / "models").glob("*/model.json")]
    assert default in {f"{m['name']}-{m['version']}" for m in found}


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_passes(tmp_path) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither 'docker compose' nor docker-compose (.ci/run installs it)")
    env_file = DEPLOY / ".env"
    created = not env_file.exists()
    if created:
        shutil.copy(DEPLOY / ".env.example", env_file)
    try:
        done = subprocess.run(
            [*command, "-f", str(DEPLOY / "docker-compose.yml"), "config"],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"},
        )
    finally:
        if created:
            env_file.unlink()
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) >= {"web", "worker", "scheduler", "redis", "postgres"}
    for name in ("web", "worker", "scheduler"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["command"] == ["python", "-m", "workers"]
    assert services["scheduler"]["command"] == ["python", "-m", "workers.scheduler"]
    assert services["migrate"]["command"][-1] == "init-db"
    for name in ("web", "redis", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    assert {"pgdata", "redisdata"} <= set(config["volumes"])


def _manifests() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


@pytest.mark.parametrize(
    ("name", "doc"),
    _manifests(),
    ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in _manifests()],
)
def test_manifest_is_valid_kubernetes(name: str, doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _by_kind() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for _, d in _manifests()}


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files - {"secret.example.yaml"}


def test_web_tier_shape() -> None:
    docs = _by_kind()
    web = docs[("Deployment", "tonehub-web")]
    assert web["spec"]["replicas"] == 3
    [container] = web["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert docs[("PodDisruptionBudget", "tonehub-web")]["spec"]["minAvailable"] >= 1
    hpa = docs[("HorizontalPodAutoscaler", "tonehub-web")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "tonehub-web"
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    service = docs[("Service", "tonehub-web")]
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]


def test_worker_scheduler_migrations_ingress_config() -> None:
    docs = _by_kind()
    worker = docs[("Deployment", "tonehub-worker")]
    assert worker["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "-m",
        "workers",
    ]
    assert (
        docs[("HorizontalPodAutoscaler", "tonehub-worker")]["spec"]["scaleTargetRef"][
            "name"
        ]
        == "tonehub-worker"
    )
    scheduler = docs[("Deployment", "tonehub-scheduler")]["spec"]
    assert scheduler["replicas"] == 1 and scheduler["strategy"]["type"] == "Recreate"
    job = docs[("Job", "tonehub-migrate")]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"][-1] == "init-db"
    ingress = docs[("Ingress", "tonehub")]
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    assert ingress["spec"]["tls"][0]["secretName"]
    assert ("ConfigMap", "tonehub-config") in docs
    secret = docs[("Secret", "tonehub-secrets")]
    for name, value in secret["stringData"].items():  # placeholders only
        assert value == "" or "CHANGE_ME" in value or "example" in value, name
    # Every pod runs as the image's non-root user, with limits.
    for (kind, _), doc in docs.items():
        if kind in ("Deployment", "Job"):
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            for c in pod["containers"]:
                assert c["resources"]["limits"]["memory"]


def test_settings_in_manifests_exist() -> None:
    """Every TONEHUB_* variable the deploy files set is a real setting."""
    from dataclasses import fields

    from core.config import Settings

    known = {f"TONEHUB_{f.name.upper()}" for f in fields(Settings)} | {
        "TONEHUB_WEB_WORKERS",
        "TONEHUB_WEB_THREADS",
        "TONEHUB_BIND",
        "TONEHUB_PRELOAD",
        "TONEHUB_LOG_FORMAT",
        "TONEHUB_LOG_LEVEL",
    }
    docs = _by_kind()
    names = set(docs[("ConfigMap", "tonehub-config")]["data"]) | set(
        docs[("Secret", "tonehub-secrets")]["stringData"]
    )
    env_example = (DEPLOY / ".env.example").read_text().splitlines()
    names |= {line.split("=")[0] for line in env_example if line.startswith("TONEHUB_")}
    assert names - known == set()
