"""The OpenAPI document against the real server, by a fuzzer nobody here wrote: Schemathesis
(PyPI) reads `/openapi.json` and sends what it allows and what it forbids, with every check
(`--checks all`: no 5xx, only documented statuses, bodies and content types, valid data
accepted, invalid data refused, 405 with Allow for other methods). The stack is real: a
nats-server, a worker, the shim's API; the models are tiny with RANDOM WEIGHTS, every tier able
to translate every configured language (NLLB behind t5), so that every valid request has a
translation to give. The seed is fixed and generation deterministic: the same cases each run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http_service import Api, start_api, translates
from tests.support import ROOT, Models, start_worker, stop_process, worker_env
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import Pool


@pytest.fixture(scope="module")
def fuzzed(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("fuzz")
    tiers = {"BASIC_MODEL": models.t5, "MEDIUM_MODEL": models.nllb, "PREMIUM_MODEL": models.nllb}
    with EmbeddedNats(root / "nats") as nats:
        worker = start_worker(worker_env(nats.url, models, **tiers), Pool.NORMAL, root / "w.log")
        try:
            api = start_api(nats.url, root / "api.log", translates, API_TIMEOUT=120, **tiers)
            try:
                yield api
            finally:
                stop_process(api.process)
        finally:
            stop_process(worker)


def test_schemathesis_finds_nothing_the_openapi_document_does_not_say(
    fuzzed: Api, tmp_path: Path
) -> None:
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PYTHONPATH": str(ROOT)}
    report = tmp_path / "junit.xml"
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{fuzzed.url}/openapi.json",
        "--checks", "all", "--max-examples", "25", "--seed", "22", "--generation-deterministic",
        "--workers", "1", "--request-timeout", "150",
        # how fast it generates data on a loaded 2-core machine, not a property of the API
        "--suppress-health-check", "too_slow",
        "--report", "junit", "--report-junit-path", str(report),
    ]  # fmt: skip
    run = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-8000:]
    assert "8 selected / 8 total" in out
    assert "No issues found" in out or " passed" in out, out[-3000:]
    assert "failure" not in out.split("SUMMARY")[-1].lower(), out[-3000:]
    cases = report.read_text()
    for operation in ("POST /translate", "POST /translate/batch", "POST /detect",
                      "GET /languages", "POST /translate_file", "GET /download_file"):  # fmt: skip
        assert operation in cases, cases[:2000]
