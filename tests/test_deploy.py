"""The deployment files, checked without a Docker engine: the compose file with Debian's
`docker-compose config`, the Kubernetes manifests against the Kubernetes schemas
(kubernetes-validate) and KEDA's documented ScaledObject shape, the Dockerfile's paths, and
every command, environment variable and port they use against the code.

deploy/nats/nats.conf runs for real in tests/test_deploy_nats.py; the dashboard's and alert
rules' metrics are checked against a real scrape in tests/test_metrics.py."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import kubernetes_validate
import pytest
import yaml

from scaler import cli as scaler_cli
from scaler.settings import ScalerSettings
from tests.support import ROOT
from translator.bus import accounts
from translator.commands import main as translator_cli
from translator.commands import nats_config
from translator.contracts.settings import NatsSettings, TranslatorSettings
from translator.contracts.subjects import WORKERS_CONSUMER, Pool, request_stream
from zmq_compat import cli as shim_cli
from zmq_compat.service import stop_budget
from zmq_compat.settings import ShimSettings

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.33.0"
CLIS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "translator": translator_cli.parser,
    "scaler": scaler_cli.parser,
    "zmq-compat": shim_cli.parser,
}
SEED = {  # the 0.4.9 settings the compose file must carry, with their documented defaults
    "TRANSLATION_WORKERS", "QUANTIZATION_LEVEL", "ENABLE_DYNAMIC_SCALING",
    "SCALING_CHECK_INTERVAL", "MAX_NORMAL_WORKERS", "MAX_ANY_WORKERS",
}  # fmt: skip


# -- helpers ----------------------------------------------------------------------------------


def check_command(command: list[str]) -> None:
    """The command is one of our console scripts and its arguments parse."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] in scripts, f"{command[0]} is not a console script"
    CLIS[command[0]]().parse_args(command[1:])  # SystemExit on unknown arguments


def check_environment(env: dict[str, str], settings: type[NatsSettings]) -> NatsSettings:
    """Every variable is a setting of the service (or a standard OTEL_* one), and its value is
    valid; the settings they make."""
    fields = {name.upper() for name in settings.model_fields}
    unknown = [key for key in env if key not in fields and not key.startswith("OTEL_")]
    assert not unknown, f"not settings of {settings.__name__}: {unknown}"
    with patch.dict(os.environ, {k: str(v) for k, v in env.items()}, clear=True):
        return settings()  # these values alone, read as the service reads its environment


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert match is not None, duration
    return int(match.group(1) or 0) * 60 + float(match.group(2) or 0)


# what .env holds (.env.example: every password, required)
SECRETS = {
    **{variable: f"secret-{variable.lower()}" for variable in accounts.password_variables()},
    "GRAFANA_ADMIN_PASSWORD": "g", "NATS_ROUTE_PASSWORD": "r",
}  # fmt: skip


def run_compose(files: tuple[str, ...], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose not found: `apt-get install docker-compose` (make test does)")
    return subprocess.run(
        [binary, *(arg for f in files for arg in ("-f", str(ROOT / f))), "config"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
    )  # fmt: skip


def compose_config(*files: str) -> dict[str, Any]:
    """`docker-compose config`: the files as Docker Compose reads them, variables resolved
    (with the passwords of a .env)."""
    done = run_compose(files, SECRETS)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_each_secret(missing: str) -> None:
    files = ("docker-compose.yml", "docker-compose.cluster.yml")
    done = run_compose(files, {k: v for k, v in SECRETS.items() if k != missing})
    assert done.returncode != 0
    assert missing in done.stderr
    assert "set it in .env" in done.stderr


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return compose_config("docker-compose.yml")


def test_compose_cluster_file_runs_three_nats_nodes_and_replicates_everything() -> None:
    """docker-compose.cluster.yml over the one-host file: the multi-host set-up on one machine."""
    services = compose_config("docker-compose.yml", "docker-compose.cluster.yml")["services"]
    nodes = ["nats", "nats-2", "nats-3"]
    assert set(nodes) <= set(services)
    names = [services[n]["environment"]["NATS_SERVER_NAME"] for n in nodes]
    assert names == ["nats-1", "nats-2", "nats-3"]
    for node in nodes:
        assert services[node]["command"] == ["--config", "/etc/nats/cluster.conf"]
        for mount in _volumes(services[node]):
            if mount["type"] == "bind":
                assert Path(mount["source"]).exists(), mount
    conf = (DEPLOY / "nats" / "cluster.conf").read_text()
    assert "routes: [$NATS_ROUTE_1, $NATS_ROUTE_2, $NATS_ROUTE_3]" in conf
    assert "password: $NATS_ROUTE_PASSWORD" in conf  # a route needs it
    for node in nodes:  # each route with the password, to the three nodes
        env = services[node]["environment"]
        routes = [env[f"NATS_ROUTE_{i}"] for i in (1, 2, 3)]
        assert routes == [f"nats-route://route:r@{n}:6222" for n in names]
    for name, settings_class in (
        ("setup", TranslatorSettings), ("translator", ScalerSettings), ("zmq_compat", ShimSettings),
    ):  # fmt: skip
        env = services[name]["environment"]
        settings = check_environment(env, settings_class)
        assert isinstance(settings, TranslatorSettings)
        assert settings.stream_replicas == 3
        assert (settings.nats_url or "").split(",") == [f"nats://{n}:4222" for n in names]


def k8s_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                yield name, doc


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = doc["spec"]["template"]["spec"]["containers"]
    return result


# -- docker-compose ---------------------------------------------------------------------------


def test_compose_file_validates_and_has_the_whole_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "nats", "setup", "setup_app", "translator", "zmq_compat", "jaeger", "prometheus",
        "grafana", "nats_exporter",
    }  # fmt: skip
    nats = compose["services"]["nats"]
    assert nats["image"].startswith("nats:")
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in _volumes(nats))
    assert "8222" in nats["expose"]  # for the exporter, on the compose network alone


def test_compose_publishes_on_every_interface_only_what_a_remote_party_needs(
    compose: dict[str, Any],
) -> None:
    """The gateway's sockets and the HTTP API for a gateway or clients on other hosts; the
    rest on the host's loopback; NATS' monitoring port (no authentication) not at all."""
    published = {
        (host, port)
        for name, service in compose["services"].items()
        for host, port, _ in _ports(service)
    }
    everywhere = {port for host, port in published if host == "0.0.0.0"}
    assert everywhere == {5555, 5558, 8000}
    loopback = {port for host, port in published if host == "127.0.0.1"}
    assert loopback == {4222, 9090, 16686, 3000}
    assert all(port != 8222 for _, port in published)


def test_compose_sets_up_the_topology_as_the_operator_before_the_services(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    setup, app = services["setup"], services["setup_app"]
    check_command(setup["command"])
    check_command(app["command"])
    assert setup["command"] == ["translator", "setup"]
    assert app["command"] == ["translator", "setup", "--app"]
    assert (setup["environment"]["NATS_USER"], app["environment"]["NATS_USER"]) == (
        "operator", "client",
    )  # fmt: skip
    for name in ("translator", "zmq_compat"):
        assert services[name]["depends_on"]["setup"]["condition"] == (
            "service_completed_successfully"
        )
    scaler = services["translator"]["environment"]
    assert (scaler["NATS_USER"], scaler["WORKER_NATS_USER"]) == ("scaler", "translator")
    assert scaler["NATS_PASSWORD"] != scaler["WORKER_NATS_PASSWORD"]


def test_compose_commands_environment_and_ports_exist_in_the_code(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, settings_class in (("translator", ScalerSettings), ("zmq_compat", ShimSettings)):
        service = services[name]
        check_command(service["command"])
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD"
        check_command(test[1:])
        check_environment(service["environment"], settings_class)

    scaler = check_environment(services["translator"]["environment"], ScalerSettings)
    assert isinstance(scaler, ScalerSettings)
    for key in SEED:
        default = ScalerSettings.model_fields[key.lower()].default
        assert getattr(scaler, key.lower()) == default, f"{key} is not its documented value"
    limits = services["translator"]["deploy"]["resources"]
    assert (limits["limits"]["memory"], float(limits["limits"]["cpus"])) == ("8G", 4.0)
    assert (limits["reservations"]["memory"], float(limits["reservations"]["cpus"])) == ("4G", 2)
    grace = seconds(services["translator"]["stop_grace_period"])
    assert grace > scaler.worker_stop_grace + 5  # the scaler drains its workers first
    assert str(scaler.scaler_health_port) in services["translator"]["expose"]

    shim = check_environment(services["zmq_compat"]["environment"], ShimSettings)
    assert isinstance(shim, ShimSettings)
    # the shim queues or answers what it holds before it is killed
    assert seconds(services["zmq_compat"]["stop_grace_period"]) > stop_budget(shim) + 5
    published = {(port, target) for _, port, target in _ports(services["zmq_compat"])}
    pull, pub = shim.translator_zmq_pull_port, shim.translator_zmq_pub_port
    http = shim.zmq_health_port
    assert published == {(pull, pull), (pub, pub), (http, http)}
    assert published == {(5555, 5555), (5558, 5558), (8000, 8000)}  # 0.4.9's ports
    assert shim.http_api_enabled
    for tier in ("BASIC_MODEL", "MEDIUM_MODEL", "PREMIUM_MODEL"):  # /languages, /models
        environments = (services[name]["environment"] for name in ("zmq_compat", "translator"))
        assert len({env[tier] for env in environments}) == 1
    assert "8000" in services["zmq_compat"]["expose"]

    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in prometheus["scrape_configs"]
    }
    assert targets["translator"] == f"translator:{scaler.scaler_health_port}"
    assert targets["zmq_compat"] == f"zmq_compat:{shim.zmq_health_port}"
    for target in targets.values():
        assert target.split(":")[0] in set(services) | {"localhost"}
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_every_file_the_compose_file_mounts_exists(compose: dict[str, Any]) -> None:
    binds = [
        Path(v["source"]) for s in compose["services"].values() for v in _volumes(s)
        if v["type"] == "bind"
    ]  # fmt: skip
    assert len(binds) == 5  # deploy/nats, prometheus.yml, alerts.yml, grafana's two folders
    for source in binds:
        assert source.exists(), source
    mounted = {v["target"] for v in _volumes(compose["services"]["prometheus"])}
    assert "/etc/prometheus/alerts.yml" in mounted


def _ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, published, target) of each port, as `docker-compose config` writes them:
    a mapping, or `host:published:target/tcp` when bound to one address."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append(("0.0.0.0", int(port["published"]), int(port["target"])))
        else:
            host, published, target = port.split("/")[0].split(":")
            found.append((host, int(published), int(target)))
    return found


def _volumes(service: dict[str, Any]) -> list[dict[str, str]]:
    """source, target and type (bind or volume) of each `source:target[:mode]`."""
    mounts = []
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        kind = "bind" if source.startswith("/") else "volume"
        mounts.append({"source": source, "target": target, "type": kind})
    return mounts


# -- Kubernetes -------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_but_no_secret() -> None:
    """The operator creates the `nats-users` Secret: applying the kustomization never resets
    it (secret.example.yaml only shows its keys)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {
        "kustomization.yaml", "nats-values.yaml", "secret.example.yaml",
    }  # fmt: skip
    assert listed == present
    assert kustomization["namespace"] == "meeshy"
    assert "Secret" not in {doc["kind"] for _, doc in k8s_documents()}


def test_kubectl_kustomize_builds_the_manifests_without_a_secret() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed here (it is on the project's machines)")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    built = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    kinds = sorted(doc["kind"] for doc in built)
    assert "Secret" not in kinds
    assert kinds.count("Deployment") == 4  # two worker pools, the scaler, the shim
    assert kinds.count("Job") == 1  # the operator's set-up
    assert kinds.count("ScaledObject") == 2
    keys = set(yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"])
    for doc in built:
        assert doc["metadata"].get("namespace", "meeshy") == "meeshy"
        if doc["kind"] != "Deployment":
            continue
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "meeshy-translator"
        for container in containers(doc):
            for env in container.get("env", []):
                if "valueFrom" in env:
                    ref = env["valueFrom"]["secretKeyRef"]
                    assert (ref["name"], ref["key"]) in {("nats-users", k) for k in keys}


def test_kubernetes_manifests_validate_against_the_kubernetes_schemas() -> None:
    kinds = []
    for name, doc in k8s_documents():
        kinds.append(doc["kind"])
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked against KEDA's documented shape below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises if invalid
        for container in containers(doc) if doc["kind"] == "Deployment" else []:
            check_command(container["command"])
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"], name
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
    assert sorted(kinds) == sorted(
        ["Namespace", "ConfigMap", "Job", "Deployment", "Deployment", "ScaledObject",
         "ScaledObject", "Deployment", "Service", "Deployment", "Service"]
    )  # fmt: skip


KEDA_SPEC = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
}  # fmt: skip
KEDA_NATS_METADATA = {
    "natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold",
    "activationLagThreshold", "useHttps",
}  # fmt: skip


def test_scaled_objects_have_kedas_documented_shape_and_our_lag() -> None:
    docs = dict(((doc["kind"], doc["metadata"]["name"]), doc) for _, doc in k8s_documents())
    scaled = {name: doc for (kind, name), doc in docs.items() if kind == "ScaledObject"}
    assert len(scaled) == len(Pool)
    for pool in Pool:
        doc = scaled[f"translator-worker-{pool.value}"]
        spec = doc["spec"]
        assert doc["apiVersion"] == "keda.sh/v1alpha1"
        assert set(spec) <= KEDA_SPEC
        assert ("Deployment", spec["scaleTargetRef"]["name"]) in docs
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "nats-jetstream"
        metadata = trigger["metadata"]
        assert set(metadata) <= KEDA_NATS_METADATA
        assert {"natsServerMonitoringEndpoint", "stream", "consumer", "lagThreshold"} <= set(
            metadata
        )
        assert all(isinstance(v, str) for v in metadata.values())  # KEDA takes strings
        assert metadata["natsServerMonitoringEndpoint"].endswith(":8222")
        assert metadata["account"] == "MEESHY"  # the account of deploy/nats/nats.conf
        assert metadata["stream"] == request_stream(pool)
        assert metadata["consumer"] == WORKERS_CONSUMER
        assert int(metadata["lagThreshold"]) > 0
        rule = ScalerSettings().rule(pool)
        assert spec["maxReplicaCount"] == rule.maximum
        assert spec["minReplicaCount"] == rule.minimum
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleUp"]["policies"][0]["value"] == rule.up_step
        assert behavior["scaleDown"]["policies"][0]["value"] == rule.down_step
        hpa = {  # the behavior KEDA hands to its HPA, checked against the HPA schema
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "check"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "maxReplicas": spec["maxReplicaCount"],
                "behavior": behavior,
            },
        }
        kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)


def test_kubernetes_settings_exist_and_grace_periods_outlast_the_drain() -> None:
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_documents()}
    shared = docs[("ConfigMap", "translator-config")]["data"]
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"]
    for (kind, name), doc in docs.items():
        if kind != "Deployment":
            continue
        (container,) = containers(doc)
        env = {**shared, **{e["name"]: e.get("value", "from-secret") for e in container["env"]}}
        for e in container["env"]:
            if "valueFrom" in e:
                assert e["valueFrom"]["secretKeyRef"]["key"] in secret
        command = container["command"][0]
        classes: dict[str, type[TranslatorSettings]] = {
            "zmq-compat": ShimSettings,
            "scaler": ScalerSettings,
        }
        settings_class = classes.get(command, TranslatorSettings)
        settings = check_environment(env, settings_class)
        assert isinstance(settings, TranslatorSettings)
        grace = doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        if command == "translator":  # a worker drains its batch within the grace period
            assert grace > settings.shutdown_grace_period + 10, name
        if isinstance(settings, ScalerSettings):
            assert settings.scaler_mode == "observe"  # KEDA scales the workers
        if isinstance(settings, ShimSettings):
            ports = {p["containerPort"] for p in container["ports"]}
            assert ports == {5555, 5558, settings.zmq_health_port}
            assert doc["spec"]["replicas"] == 1
            assert grace > stop_budget(settings) + 5, name


def test_the_nats_accounts_and_helm_values_are_generated_from_the_permissions() -> None:
    """deploy/nats/accounts.conf and deploy/k8s/nats-values.yaml are what `translator
    nats-config` writes from translator/contracts/permissions.py; every password they name is a
    key of the Secret and of .env.example."""
    for path, text in nats_config.documents(DEPLOY).items():
        assert path.read_text() == text, f"{path} is not current: run `translator nats-config`"
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"]
    example = (ROOT / ".env.example").read_text()
    for variable in accounts.password_variables():
        assert variable in values["container"]["env"]
        assert variable in secret
        assert f"{variable}=" in example
    assert values["config"]["cluster"]["routeURLs"]["user"] == "route"  # routes need a password


# -- Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_copies_existing_paths_and_runs_existing_commands() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    lines = re.sub(r"\\\n\s*", " ", dockerfile).splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    sources = [src for args in copies if not any(a.startswith("--from") for a in args)
               for src in args if not src.startswith("--")]  # fmt: skip
    assert sources
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for source in sources:
        assert (ROOT / source).exists(), source
        assert f"!{source.rstrip('/')}/" in ignore or f"!{source}" in ignore, source
    stages = [line.split()[-1] for line in lines if line.startswith("FROM ")]
    assert stages == ["build", "runtime"]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    cmd = next(line for line in lines if line.startswith("CMD "))
    check_command(yaml.safe_load(cmd.removeprefix("CMD ")))
    health = next(line for line in lines if line.startswith("HEALTHCHECK "))
    for command in re.findall(r"(zmq-compat --check|scaler --check)", health):
        check_command(command.split())
    assert "ARG VARIANT=cpu" in dockerfile
    assert "translator models download $BAKE_MODELS" in dockerfile
    assert "MODELS_PATH=/models" in dockerfile
