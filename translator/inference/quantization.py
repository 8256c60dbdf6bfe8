"""QUANTIZATION_LEVEL -> how to load a model on a device, with clear refusals.

On CUDA, int8/int4 use bitsandbytes; on CPU, int8 is torch dynamic quantization of the Linear
layers, and float16/int4 are refused (CPU kernels for them are missing or slower than float32)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from translator.contracts.errors import QuantizationUnsupported

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadPlan:
    level: str
    device: str
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    dynamic_int8: bool = False


def resolve_device(setting: str) -> str:
    if setting != "auto":
        return setting
    return "cuda" if torch.cuda.is_available() else "cpu"


def plan(level: str, device: str) -> LoadPlan:
    on_cuda = device.startswith("cuda")
    if level == "float32":
        return LoadPlan(level, device, {"dtype": torch.float32})
    if level == "bfloat16":
        return LoadPlan(level, device, {"dtype": torch.bfloat16})
    if level == "float16":
        if not on_cuda:
            raise QuantizationUnsupported(level, device, "use float32, bfloat16 or int8 on CPU")
        return LoadPlan(level, device, {"dtype": torch.float16})
    if level in ("int8", "int4"):
        if on_cuda:
            return LoadPlan(level, device, _bitsandbytes_kwargs(level))
        if level == "int4":
            raise QuantizationUnsupported(level, device, "int4 needs CUDA; use int8 on CPU")
        return LoadPlan(level, device, {"dtype": torch.float32}, dynamic_int8=True)
    raise QuantizationUnsupported(level, device, "unknown level")


def _bitsandbytes_kwargs(level: str) -> dict[str, Any]:
    from transformers import BitsAndBytesConfig

    if level == "int8":
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float16
        )
    return {"quantization_config": config, "device_map": {"": 0}}


def quantize_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """int8 weights for every Linear layer, activations quantized on the fly (CPU)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks torch.ao.quantization as deprecated
        quantized: torch.nn.Module = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear}, dtype=torch.qint8
        )
    return quantized
