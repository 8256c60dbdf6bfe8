"""The alert rules and the dashboard against the real tools: promtool's rule unit tests and
config check, and a real Prometheus (Debian's binary, `make test` installs it) scraping the
running scaler and shim while a known workload runs: good requests, an unsupported language, an
unreadable request, a scale-down, a killed worker, then the shim stopped."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
import yaml
from nats.aio.client import Client

from tests.gateway import gateway, shim
from tests.probes import DEPLOY, Samples, dashboard_and_alert_queries, scrape, wait_metric
from tests.support import (
    Models,
    free_port,
    publish_raw,
    publish_request,
    request,
    shim_env,
    start_scaler,
    stop_process,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.messages import ALERT_KINDS
from translator.contracts.subjects import Pool

RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
Series = list[dict[str, Any]]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: `apt-get install prometheus` (make test does)")
    return path


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def test_alert_rules_pass_their_unit_tests() -> None:
    done = subprocess.run(
        [tool("promtool"), "test", "rules", str(RULE_TESTS)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == set(alert_expressions())  # every rule has its tests


def test_shipped_prometheus_config_and_rules_check(tmp_path: Path) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]  # where compose mounts it
    config["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    for args in (
        ["check", "config", str(tmp_path / "prometheus.yml")],
        ["check", "rules", str(RULES)],
    ):
        done = subprocess.run(
            [tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


# -- a real Prometheus -------------------------------------------------------------------------


class Prometheus:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as reply:
                return bool(reply.status == 200)
        except OSError:  # not listening yet, or 503 while it starts
            return False

    async def ready(self, timeout: float = 60) -> None:
        with anyio.fail_after(timeout):
            while not self.is_ready():  # noqa: ASYNC110 (another process's state)
                await anyio.sleep(0.2)

    def query(self, expr: str) -> Series:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as reply:
            answer = json.load(reply)
        assert answer["status"] == "success", answer
        result: Series = answer["data"]["result"]
        return result

    async def wait(self, expr: str, timeout: float = 60) -> Series:
        """Query until `expr` returns something."""
        with anyio.fail_after(timeout):
            while not (result := self.query(expr)):  # noqa: ASYNC110 (another process's state)
                await anyio.sleep(0.5)
        return result


@contextmanager
def prometheus(tmp_path: Path, targets: dict[str, int]) -> Iterator[Prometheus]:
    """Debian's prometheus on a free port, scraping `targets` (job -> port) every second and
    evaluating the shipped alert rules, with a temporary store."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{p}"]}]}
            for job, p in targets.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield Prometheus(port)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def values(series: Series) -> dict[str, float]:
    """One value per series, keyed by its labels (`pool=normal,status=ok`)."""
    return {
        ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items())): float(s["value"][1])
        for s in series
    }


@pytest.mark.anyio
async def test_a_real_prometheus_evaluates_every_dashboard_query_and_alert(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    http, shim_http = free_port(), free_port()
    env = worker_env(
        nats_server.url, models, NORMAL_WORKERS=2, MIN_NORMAL_WORKERS=1, ANY_WORKERS=0,
        SCALING_CHECK_INTERVAL=8, METRICS_INTERVAL=0.2, SCALER_HEALTH_PORT=http,
    )  # fmt: skip
    with prometheus(tmp_path, {"translator": http, "zmq_compat": shim_http}) as prom:
        await prom.ready()
        scaler = start_scaler(env, tmp_path / "scaler.log")
        try:
            await _run_workload(nc, nats_server, prom, scaler, http, shim_http, tmp_path)
        finally:
            assert stop_process(scaler) == 0


async def _run_workload(
    nc: Client,
    nats_server: EmbeddedNats,
    prom: Prometheus,
    scaler: subprocess.Popen[bytes],
    http: int,
    shim_http: int,
    tmp_path: Path,
) -> None:
    # Before anything happens, every counter is stored at 0: the first event is an increase.
    first = values(await prom.wait('translator_alerts_total{job="translator"}'))
    assert len(first) == len(Pool) * len(ALERT_KINDS)
    assert set(first.values()) == {0.0}
    assert values(await prom.wait('translator_scaling_events_total{direction="down"}'))
    async with shim(
        shim_env(nats_server.url, ZMQ_HEALTH_PORT=shim_http), tmp_path / "shim"
    ) as ports:
        await prom.wait('zmq_compat_requests_total{outcome="accepted"} == 0')
        # idle with 2 workers and a minimum of 1: one scaling event, down
        await wait_metric(http, "translator_scaling_events_total", 1, direction="down")
        async with gateway(ports) as gw:
            sent = [await gw.request(f"Hello number {i}", ["fr"]) for i in range(10)]
            for message in sent:
                await gw.results_for(message)
        # a language no model writes: the shim answers that itself (GATEWAYS.md), a worker
        # gives a NATS client an error result for it
        await publish_request(nc, request("Hello", ("bas",)), "translate.result.prometheus")
        # counted (the scaler has it from a heartbeat) before a worker is killed below
        await wait_metric(http, "translator_translations_total", 1, pool="normal", status="error")
        await publish_raw(nc, Pool.NORMAL, b"{not json", "translate.result.prometheus")
        await wait_metric(http, "translator_dead_letters_total", 1, pool="normal")
        victim = await only_worker(scaler.pid)  # not the one the scale-down is stopping
        victim.send_signal(signal.SIGKILL)
        await wait_metric(http, "translator_alerts_total", 1, pool="normal", kind="scaling_failed")
        await prom.wait('translator_alerts_total{kind="scaling_failed", pool="normal"} == 1')
        await prom.wait('translator_dead_letters_total{pool="normal"} == 1')
        await prom.wait('zmq_compat_requests_total{outcome="result_ok"} == 10')
        for status in ("ok", "error"):  # over the whole run: a rate() window may have passed
            await prom.wait(
                f'increase(translator_translations_total{{pool="normal",status="{status}"}}[30m])'
                " > 0"
            )
        for outcome in ("accepted", "result_ok"):
            await prom.wait(f'increase(zmq_compat_requests_total{{outcome="{outcome}"}}[30m]) > 0')
        _check_alert_expressions(prom)
        _check_dashboard(prom)
        _check_rule_tests_use_exported_labels(scrape(http) | scrape(shim_http))
    # the shim is stopped: its target is down, whatever its job is called
    down = await prom.wait(alert_expressions()["TranslatorDown"])
    assert [s["metric"]["service"] for s in down] == ["zmq_compat"]


async def only_worker(pid: int, timeout: float = 60) -> psutil.Process:
    """The scaler's one worker, once the one stopped by the scale-down has exited."""
    with anyio.fail_after(timeout):
        while True:
            live = []
            for child in psutil.Process(pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):  # exited in between
                    if child.status() != psutil.STATUS_ZOMBIE:
                        live.append(child)
            if len(live) == 1:
                return live[0]
            await anyio.sleep(0.1)


def _check_alert_expressions(prom: Prometheus) -> None:
    found = {name: values(prom.query(expr)) for name, expr in alert_expressions().items()}
    assert list(found["TranslatorScalingFailed"]) == ["pool=normal"]  # the killed worker
    assert found["TranslatorQueueHigh"] == {}
    assert found["TranslatorUtilizationHigh"] == {}
    assert found["TranslatorNoWorker"] == {}  # the any pool has no worker, and no work either
    assert found["TranslatorModelUnavailable"] == {}
    assert found["TranslatorDown"] == {}


def _check_dashboard(prom: Prometheus) -> None:
    """Every dashboard query through Prometheus, with the values the workload implies."""
    results = {expr: values(prom.query(expr)) for expr in _dashboard_queries()}

    def result(fragment: str) -> dict[str, float]:
        (expr,) = [e for e in results if fragment in e]
        return results[expr]

    assert result("max by (pool) (translator_queue_depth)") == {"pool=any": 0, "pool=normal": 0}
    assert result("translator_queue_capacity") == {"pool=any": 10_000, "pool=normal": 10_000}
    assert set(result("translator_in_flight")) == {"pool=any", "pool=normal"}
    assert set(result("translator_worker_utilization")) == {"pool=any", "pool=normal"}
    assert (
        result("histogram_quantile(0.5, sum by (le, pool) (rate(translator_processing")[
            "pool=normal"
        ]
        > 0
    )
    assert (
        result("histogram_quantile(0.95, sum by (le, pool) (rate(translator_queue")["pool=normal"]
        > 0
    )
    assert result("translator_scaling_events_total")["direction=down,pool=normal"] > 0
    workers = result("sum by (pool, state) (translator_workers)")
    assert workers["pool=any,state=running"] == 0
    assert workers["pool=normal,state=unavailable"] == 0
    rates = result("rate(translator_translations_total")  # its values depend on the window
    assert {"pool=normal,status=ok", "pool=normal,status=error"} <= set(rates)
    errors = result("sum by (reason) (increase(translator_errors_total")
    assert errors["reason=invalid_request"] > 0
    assert errors["reason=unsupported_language"] > 0
    assert errors["reason=model_failure"] == 0
    assert result("translator_dead_letters_total")["pool=normal"] > 0
    shim_rates = result("zmq_compat_requests_total")  # a 1m window, as the translations'
    assert {"outcome=accepted", "outcome=result_ok"} <= set(shim_rates)
    assert shim_rates["outcome=pool_full"] == 0
    assert min(result("translator_worker_rss_bytes").values()) > 50 * 2**20
    assert min(result("translator_model_load_seconds").values()) > 0


def _dashboard_queries() -> list[str]:
    alerts = set(alert_expressions().values())
    return [query for query in dashboard_and_alert_queries() if query not in alerts]


def _check_rule_tests_use_exported_labels(exported: Samples) -> None:
    """The alert unit tests feed series with the names and label names a live scrape has
    (Prometheus adds `job` and `instance`; `up` is its own)."""
    live = {(name, frozenset(k for k, _ in labels)) for name, labels in exported}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    for test in tests:
        for item in test["input_series"]:
            name, _, body = item["series"].partition("{")
            keys = frozenset(re.findall(r"(\w+)=", body)) - {"job", "instance"}
            if name != "up":
                assert (name, keys) in live, item["series"]
