"""One `generate()` for a group of texts that share model, source and target language."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from translator.models import LoadedModel

DEFAULT_MAX_NEW_TOKENS = 256


@dataclass(frozen=True)
class Translation:
    text: str
    confidence: float


def max_new_tokens(loaded: LoadedModel, setting: int | None) -> int:
    if setting is not None:
        return setting
    configured = getattr(loaded.model.generation_config, "max_new_tokens", None)
    return int(configured) if configured else DEFAULT_MAX_NEW_TOKENS


@torch.inference_mode()
def translate(
    loaded: LoadedModel,
    texts: list[str],
    source: str,
    target: str,
    *,
    max_tokens: int | None = None,
    num_beams: int = 1,
) -> list[Translation]:
    """Translate `texts` in one batch; order is kept. The caller checked the pair."""
    family = loaded.family
    prepared = family.prepare(texts, source, target)
    inputs = loaded.tokenizer(prepared, return_tensors="pt", padding=True, truncation=True)
    inputs = inputs.to(loaded.device)
    output = loaded.model.generate(
        **inputs,
        **family.generate_kwargs(target),
        max_new_tokens=max_new_tokens(loaded, max_tokens),
        num_beams=num_beams,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
    )
    decoded = loaded.tokenizer.batch_decode(output.sequences, skip_special_tokens=True)
    confidences = _confidences(loaded, output, num_beams)
    return [Translation(t.strip(), c) for t, c in zip(decoded, confidences, strict=True)]


def _confidences(loaded: LoadedModel, output: Any, num_beams: int) -> list[float]:
    """The geometric mean of the chosen tokens' probabilities, per sequence."""
    beam_indices = getattr(output, "beam_indices", None) if num_beams > 1 else None
    scores = loaded.model.compute_transition_scores(
        output.sequences, output.scores, beam_indices=beam_indices, normalize_logits=True
    )
    values = []
    for row in scores:
        finite = row[torch.isfinite(row) & (row != 0)]
        mean = float(finite.mean()) if finite.numel() else 0.0
        values.append(round(math.exp(mean), 4))
    return values
