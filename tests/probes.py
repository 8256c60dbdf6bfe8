"""Probing a running service over HTTP, as an operator's tools do: its health endpoints, its
/metrics (scraped and summed), and the queries of the shipped dashboard and alert rules."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import anyio
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT, port_logged

DEPLOY = ROOT / "deploy"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    status, text = get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert found, f"no {name}{labels} in {sorted(n for n, _ in samples)}"
    return sum(found)


async def wait_metric(port: int, name: str, target: float, **labels: str) -> Samples:
    """Scrape until `name` (summed over `labels`) reaches `target`."""
    with anyio.fail_after(60):
        while True:
            samples = scrape(port)
            present = any(n == name and set(labels.items()) <= ls for n, ls in samples)
            if present and value(samples, name, **labels) >= target:
                return samples
            await anyio.sleep(0.2)


def dashboard_and_alert_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "translator.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    queries += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(queries) > 15
    return queries


async def health_port(log: Path, timeout: float = 30) -> int:
    """The port of a service's health server, once its log says it listens."""
    return await port_logged(log, "health and metrics", timeout)


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def wait_status(port: int, path: str, status: int, timeout: float = 60) -> str:
    with anyio.fail_after(timeout):
        while (answer := get(port, path))[0] != status:  # noqa: ASYNC110
            await anyio.sleep(0.2)
    return answer[1]
