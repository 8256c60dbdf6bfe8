"""`translator setup`: the operator's step, before the services start and after a change of the
limits (pool sizes, ack wait, retention...): every stream, consumer and bucket of the service,
created or updated, as the `operator` user. The services only check what it made.

`translator setup --app`, as an application's user (`client`, account APP): the application's
own TRANSLATE_RESULTS, which keeps the results published on `translate.result.<name>` for the
consumers it makes (docs/NATS.md)."""

from __future__ import annotations

import json
import logging
import sys

from translator.bus.connection import NatsUnreachable, connect
from translator.bus.retry import JetStreamUnavailable, patiently
from translator.bus.topology import ensure_stream, results_stream_config, setup_topology
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import RESULTS_STREAM, Role

log = logging.getLogger(__name__)


async def run_setup(settings: TranslatorSettings, app: bool) -> int:
    role = Role.CLIENT if app else Role.OPERATOR
    try:
        nc = await connect(settings, f"translator-setup-{role.value}", role, patient=False)
    except NatsUnreachable as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    try:
        js = nc.jetstream()
        if app:
            config = results_stream_config(settings)
            await patiently(f"setting up {RESULTS_STREAM}", lambda: ensure_stream(js, config))
        else:
            await setup_topology(js, settings)
    except JetStreamUnavailable as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 1
    finally:
        await nc.close()
    log.info("set up: %s", "the application's results stream" if app else "the service")
    return 0
