from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from tests.support import Models
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import setup_topology
from translator.contracts.settings import TranslatorSettings
from translator.inference import randomweights
from translator.runtime import logs


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def transformers_engine() -> Iterator[None]:
    """The tests' workers and models run the transformers engine (their timings, such as a
    batch still running when a signal comes, were written for it), unless a test names
    INFERENCE_ENGINE itself: tests/test_ct2.py and the worker's engine-parametrized test do.
    INFERENCE_ENGINE=auto (the default) has its own test there.

    The bundled Firefox Translations models (BUNDLED_MODELS) are off too, so that the tiers'
    random-weight models answer en<->pt as the tests expect; tests/test_golden.py and
    tests/test_firefox.py turn them on."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INFERENCE_ENGINE", "transformers")
        patch.setenv("BUNDLED_MODELS", "false")
        yield


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """Tiny real models with RANDOM WEIGHTS, built from configs, loaded by from_pretrained."""
    logs.quiet_progress_bars()
    root = tmp_path_factory.mktemp("models")
    return Models(
        t5=randomweights.build("t5", root / "t5"),
        nllb=randomweights.build("nllb", root / "nllb"),
        marian=randomweights.build("marian", root / "marian", pair=("en", "de")),
        m2m100=randomweights.build("m2m100", root / "m2m100"),
        slow_t5=randomweights.build("t5", root / "slow", output_tokens=300, fixed_length=True),
    )


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A real nats-server on a random port with a temporary file store."""
    with EmbeddedNats(tmp_path / "nats") as server:
        yield server


@pytest.fixture
def settings(nats_server: EmbeddedNats, models: Models) -> TranslatorSettings:
    return TranslatorSettings(
        nats_url=nats_server.url,
        basic_model=str(models.t5),
        medium_model=str(models.nllb),
        premium_model=str(models.marian),
        models_offline=True,
        ack_wait=3,
        retry_delay=0.2,
    )


@pytest.fixture
async def nc(settings: TranslatorSettings) -> AsyncIterator[Client]:
    client = await connect(settings, "tests")
    await setup_topology(client.jetstream(), settings)
    yield client
    await client.close()
