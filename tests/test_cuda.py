"""The CUDA load paths: float16, and bitsandbytes int8/int4. They need a GPU, so they are skipped
on CPU-only machines (CI); run them where one is: `pytest tests/test_cuda.py`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.support import Models
from translator.contracts.settings import TranslatorSettings
from translator.inference import engine, generation, randomweights
from translator.inference.models import load

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    # the tiny test model's 32-wide layers miss bitsandbytes' fast int4 kernel; real ones do not
    pytest.mark.filterwarnings("ignore:inner dimension .* is not aligned:UserWarning"),
]


def cuda_settings(models: Models, level: str) -> TranslatorSettings:
    return TranslatorSettings(
        basic_model=str(models.t5), models_offline=True, device="cuda", quantization_level=level
    )


def linear_types(model: torch.nn.Module) -> set[str]:
    return {type(m).__name__ for m in model.modules() if "Linear" in type(m).__name__}


@pytest.mark.parametrize(
    ("level", "expected_layer", "weight_dtype"),
    [
        ("float32", "Linear", torch.float32),
        ("float16", "Linear", torch.float16),
        ("int8", "Linear8bitLt", torch.int8),
        ("int4", "Linear4bit", torch.uint8),
    ],
)
def test_each_level_loads_on_cuda_and_translates_a_batch(
    models: Models, level: str, expected_layer: str, weight_dtype: torch.dtype
) -> None:
    loaded = load(str(models.t5), cuda_settings(models, level))
    assert (loaded.device, loaded.quantization) == ("cuda", level)
    assert expected_layer in linear_types(loaded.model)
    attention_q = loaded.model.encoder.block[0].layer[0].SelfAttention.q
    assert attention_q.weight.device.type == "cuda"
    assert attention_q.weight.dtype == weight_dtype
    out = engine.translate(loaded, ["Hello", "Good morning everyone", "Hi"], "en", "fr")
    assert len(out) == 3
    assert all(t.text and 0.0 < t.confidence <= 1.0 for t in out)


def test_bounded_generation_on_cuda_stops_a_loop_and_keeps_the_budget(tmp_path: Path) -> None:
    """The repetition stop's per-row flags and the budget on CUDA tensors (a free-running random
    model loops on one token, as on the CPU: tests/test_generation.py)."""
    path = randomweights.build("t5", tmp_path / "free", output_tokens=400)
    settings = TranslatorSettings(basic_model=str(path), models_offline=True, device="cuda")
    loaded = load(str(path), settings)
    budget = generation.Budget(ratio=1.0, floor=120, ceiling=300)
    looping = engine.translate(loaded, ["Hi", "Hello there"], "en", "fr", budget=budget,
                               repetition_limit=4)  # fmt: skip
    unbounded = engine.translate(loaded, ["Hi", "Hello there"], "en", "fr", budget=budget)
    assert all(t.looped and not t.at_budget for t in looping)
    assert all(t.at_budget and not t.looped for t in unbounded)
    assert all(len(a.text) < len(b.text) for a, b in zip(looping, unbounded, strict=True))
