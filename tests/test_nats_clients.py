"""A NATS client nobody here wrote the library of: nats.js (tests/js/client.mjs), following only
docs/NATS.md, as the deployed `client` user (deploy/nats/nats.conf), against a real nats-server
and a real worker running as `translator`. Every promise of the contract is checked on what it
saw: results with their headers and every documented field, request-reply on translate.rpc, the
micro service, error results for bad requests, a refused reply subject, and the powers the
`client` user does not have."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from nats.aio.client import Client

from tests.deployed_nats import as_user, connected_as, deployed_nats, password, set_up
from tests.support import (
    ROOT,
    Models,
    read_dead_letters,
    start_worker,
    stop_process,
    wait_for_heartbeat,
    worker_env,
)
from translator.contracts.subjects import (
    EVENTS_STREAM,
    RESULTS_STREAM,
    Pool,
    Role,
    request_stream,
)

pytestmark = pytest.mark.anyio
JS = ROOT / "tests" / "js"
RESULT_SCHEMA = json.loads((ROOT / "docs" / "schemas" / "translation-result.json").read_text())
DETECT_SCHEMA = json.loads((ROOT / "docs" / "schemas" / "detect-result.json").read_text())


def run_js_client(url: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is needed (tests/js); `make test` installs its packages"
    assert (JS / "node_modules" / "nats").is_dir(), (
        "run `npm ci --prefix tests/js` (make test does)"
    )
    env = {"PATH": "/usr/bin:/bin", "NATS_URL": url, "NATS_USER": "client"}
    env["NATS_PASSWORD"] = password(Role.CLIENT)
    done = subprocess.run(
        [node, str(JS / "client.mjs")], env=env, capture_output=True, timeout=170, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def assert_result(seen: dict[str, Any], sent: dict[str, Any], status: str) -> dict[str, Any]:
    """A result as the documents promise: its schema, its Nats-Msg-Id, the request echoed."""
    body = seen["body"]
    jsonschema.validate(body, RESULT_SCHEMA)
    assert seen["headers"]["Nats-Msg-Id"] == f"{sent['taskId']}:{body['targetLanguage']}"
    assert body["taskId"] == sent["taskId"]
    assert body["status"] == status, body
    assert body["expectedResults"] == len({t.lower() for t in sent["targetLanguages"]})
    if status == "ok":
        assert body["messageId"] == sent["messageId"]
        assert body["conversationId"] == sent["conversationId"]
        assert body["translatedText"]
        assert body["error"] is None
        assert body["errorCode"] is None
        assert "Nats-Service-Error" not in seen["headers"]
    return dict(body)


async def test_a_nats_js_client_following_the_docs_sees_every_promise_hold(
    models: Models, tmp_path: Path
) -> None:
    with deployed_nats(tmp_path) as (server, _):
        env = as_user(worker_env(server.url, models), Role.WORKER)
        await set_up(server.url, env)  # the operator's, and the application's results stream
        log = tmp_path / "worker.log"
        worker = start_worker(env, Pool.NORMAL, log)
        async with connected_as(server.url, Role.OPERATOR) as operator:
            try:
                await wait_for_heartbeat(operator, worker.pid, state="ready")
                seen = await anyio.to_thread.run_sync(run_js_client, server.url)
                letters = await read_dead_letters(operator, 2)  # the invalid one, the abuse
                stored = await _stored(operator)
            finally:
                assert stop_process(worker) == 0
    assert "permissions violation" not in log.read_text().lower()

    # JetStream, results on an inbox: one per target, each with its Nats-Msg-Id
    sent = seen["jetstream"]["sent"]
    assert seen["jetstream"]["ack"]["stream"] == request_stream(Pool.NORMAL)
    results = [assert_result(r, sent, "ok") for r in seen["jetstream"]["results"]]
    assert sorted(r["targetLanguage"] for r in results) == ["de", "fr"]
    # a request that names its targets but fails validation: an error result per target
    sent = seen["jetstreamInvalid"]["sent"]
    for result in seen["jetstreamInvalid"]["results"]:
        body = assert_result(result, sent, "error")
        assert body["errorCode"] == "invalid_request"
        assert "text" in body["error"]
        assert result["headers"]["Nats-Service-Error-Code"] == "400"
        assert result["headers"]["Nats-Service-Error"] == body["error"]
    # stored on our own subject, read live and through our own consumer; ["fr","FR","fr"] -> 1
    sent = seen["stored"]["sent"]
    (live,) = seen["stored"]["live"]
    (kept,) = seen["stored"]["stored"]
    assert assert_result(live, sent, "ok") == assert_result(kept, sent, "ok")
    assert stored["translate.result.jsclient"] == 1
    # request-reply
    assert assert_result(seen["rpc"]["reply"], seen["rpc"]["sent"], "ok")["targetLanguage"] == "de"
    many = [assert_result(r, seen["rpcMany"]["sent"], "ok") for r in seen["rpcMany"]["replies"]]
    assert sorted(r["targetLanguage"] for r in many) == ["de", "fr", "ro"]
    invalid = seen["rpcInvalid"]["reply"]
    body = assert_result(invalid, seen["rpcInvalid"]["sent"], "error")
    assert body["errorCode"] == "invalid_request"
    assert "text is blank" in body["error"]
    assert invalid["headers"]["Nats-Service-Error-Code"] == "400"
    unaddressed = seen["rpcUnaddressed"]["reply"]
    assert unaddressed["body"] is None
    assert unaddressed["headers"]["Nats-Service-Error-Code"] == "400"
    assert "targetLanguages" in unaddressed["headers"]["Nats-Service-Error"]
    # detection, and the micro service as `nats micro ls` sees it
    jsonschema.validate(seen["detect"]["body"], DETECT_SCHEMA)
    assert seen["detect"]["body"]["languages"][0]["language"] == "fr"
    services = seen["services"]
    assert [p["name"] for p in services["pings"]] == ["translator"]
    (info,) = services["infos"]
    endpoints = {e["name"]: (e["subject"], e["queue_group"]) for e in info["endpoints"]}
    assert endpoints == {
        "translate": ("translate.rpc", "q"),
        "detect": ("translate.detect", "detectors"),
    }
    assert info["metadata"]["pool"] == "normal"
    (stats,) = services["stats"]
    counted = {e["name"]: e["num_requests"] for e in stats["endpoints"]}
    assert counted["translate"] == 4  # rpc, rpcMany, rpcInvalid, rpcUnaddressed
    assert counted["detect"] == 1
    # the alerts subject as a reply subject: nothing published there, a dead letter with why
    abuse = seen["abuse"]
    assert abuse["eventsSubscribed"]
    letter = next(le for le in letters if le.task_id == abuse["sent"]["taskId"])
    assert letter.reply_to == "translate.event.alert"
    assert "reply subject" in letter.reason
    assert stored[EVENTS_STREAM] == 0
    # what the client user cannot do
    assert all(seen["refused"].values()), seen["refused"]
    violations = set(seen["violations"])
    assert "publish translate.gateway.request.normal" in violations  # the gateway's intake
    assert "publish translate.result.jsclient" in violations  # results come only from workers
    # nothing forged was stored: the only results are the ones asked for on our own subject
    assert {k: v for k, v in stored.items() if k != EVENTS_STREAM} == {
        "translate.result.jsclient": 1
    }


async def _stored(nc: Client) -> dict[str, int]:
    """What the streams hold that the checks above need: results by subject, events."""
    js = nc.jetstream()
    results = await js.stream_info(RESULTS_STREAM, subjects_filter=">")
    events = await js.stream_info(EVENTS_STREAM)
    return {**(results.state.subjects or {}), EVENTS_STREAM: int(events.state.messages)}
