"""One `generate()` for a group of texts that share model, source and target language: input
counted and never truncated (the text plan made every piece fit), output bounded by a budget
from the source length, looping rows stopped and collapsed (`generation.py`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteriaList

from translator.inference import ct2, generation
from translator.inference.models import LoadedModel

DEFAULT_MAX_NEW_TOKENS = 256
# Firefox Translations models were trained on sentences: longer pieces are cut into chunks of
# this many tokens (the engine itself does not split, and 10,000 characters came back as 400
# of nonsense: shared/research/real-mt.md)
FIREFOX_INPUT_TOKENS = 128
# their engine has no output limit to set: an output this many times its source's tokens is
# reported as at its budget (a runaway), as the other engines report theirs
FIREFOX_RUNAWAY_RATIO = 3.0
_UNBOUNDED = 100_000  # tokenizers say 1e30 when the model sets no input limit


@dataclass(frozen=True)
class Translation:
    text: str
    confidence: float
    at_budget: bool = False  # generation stopped at its token budget, not at the end
    looped: bool = False  # a repetition loop was stopped and collapsed


def ceiling(loaded: LoadedModel, setting: int | None) -> int:
    """The budget's ceiling: MAX_NEW_TOKENS, else the model's own max_new_tokens, else 256."""
    if setting is not None:
        return setting
    if loaded.echo or loaded.engine == "firefox":
        return DEFAULT_MAX_NEW_TOKENS
    configured = getattr(loaded.model.generation_config, "max_new_tokens", None)
    return int(configured) if configured else DEFAULT_MAX_NEW_TOKENS


def input_limit(loaded: LoadedModel, setting: int) -> int:
    """The most tokens the model is given at once: MAX_INPUT_TOKENS, within what it takes."""
    limits = [setting]
    if loaded.engine == "firefox":
        return min(setting, FIREFOX_INPUT_TOKENS)
    positions = getattr(loaded.model.config, "max_position_embeddings", None)
    if positions:
        limits.append(int(positions))
    declared = getattr(loaded.tokenizer, "model_max_length", None)
    if declared and declared < _UNBOUNDED:
        limits.append(int(declared))
    return min(limits)


def piece_limit(
    loaded: LoadedModel, source: str, target: str, setting: int
) -> tuple[Callable[[str], int], int]:
    """How to count a piece's own tokens, and how many it may have: the input limit less what
    the family adds to every piece (T5's task prefix, language and end tokens), with a margin
    of 2 for the tokens merged where the prefix meets the text."""
    if loaded.echo:
        return (lambda text: len(text.split()) or 1), setting
    if loaded.engine == "firefox":  # a `tokenizers.Tokenizer`, no prompt around the text
        encode = loaded.tokenizer.encode
        return (lambda text: len(encode(text, add_special_tokens=False).ids)), input_limit(
            loaded, setting
        )
    tokenizer, family = loaded.tokenizer, loaded.family

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    empty = family.prepare([""], source, target)[0]
    overhead = len(tokenizer(empty, add_special_tokens=True)["input_ids"]) + 2
    limit = input_limit(loaded, setting) - overhead
    if limit < 1:
        raise ValueError(
            f"MAX_INPUT_TOKENS={setting} leaves no room for text with {loaded.name}: "
            f"its prompt alone takes {overhead} tokens"
        )
    return count, limit


@torch.inference_mode()
def translate(
    loaded: LoadedModel,
    texts: list[str],
    source: str,
    target: str,
    *,
    budget: generation.Budget | None = None,
    repetition_limit: int = 0,
    num_beams: int = 1,
    apart: bool = False,
) -> list[Translation]:
    """Translate `texts` in one batch; order is kept. The caller checked the pair. `apart`:
    where the engine may abort the process (a native one), it runs in a child process."""
    if loaded.echo:
        return [Translation(text, 1.0) for text in texts]
    if loaded.engine == "firefox":
        return _translate_firefox(loaded, texts, repetition_limit, apart)
    family = loaded.family
    prepared = family.prepare(texts, source, target)
    if budget is None:
        budget = generation.Budget(2.0, 16, ceiling(loaded, None))
    # a model that declares a minimum output length (min_new_tokens) gets it, budget or loop
    minimum = int(getattr(loaded.model.generation_config, "min_new_tokens", None) or 0)
    if loaded.engine == "ctranslate2":
        return _translate_ct2(
            loaded, prepared, target, budget, minimum, repetition_limit, num_beams
        )
    inputs = loaded.tokenizer(prepared, return_tensors="pt", padding=True, truncation=False)
    max_new = max(budget.tokens(int(inputs["attention_mask"].sum(dim=1).max())), minimum)
    inputs = inputs.to(loaded.device)
    extra = family.generate_kwargs(target)
    prompt = 2 if "forced_bos_token_id" in extra else 1
    stop = generation.RepetitionStop(repetition_limit, prompt, minimum)
    output = loaded.model.generate(
        **inputs,
        **extra,
        max_new_tokens=max_new,
        num_beams=num_beams,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
        stopping_criteria=StoppingCriteriaList(
            [stop] if repetition_limit and num_beams == 1 else []
        ),
    )
    confidences = _confidences(loaded, output, num_beams)
    translations = []
    eos, pad = loaded.tokenizer.eos_token_id, loaded.tokenizer.pad_token_id
    for i, (row, confidence) in enumerate(zip(output.sequences.tolist(), confidences, strict=True)):
        looping = i in stop.stopped  # only a row the loop stop ended is collapsed
        kept, looped = generation.collapse(row, repetition_limit if looping else 0, pad)
        ended = bool(kept) and kept[-1] == eos and len(kept) > prompt
        # a row that ran to a length the model itself fixed (min_new_tokens) is complete
        at_budget = not ended and not looped and len(kept) - prompt >= max_new > minimum
        text = loaded.tokenizer.decode(kept, skip_special_tokens=True).strip()
        translations.append(Translation(text, confidence, at_budget, looped))
    return translations


def _translate_ct2(
    loaded: LoadedModel,
    prepared: list[str],
    target: str,
    budget: generation.Budget,
    minimum: int,
    repetition_limit: int,
    num_beams: int,
) -> list[Translation]:
    """The same contract on CTranslate2: the forced target-language token is its target
    prefix; its score (the mean log-probability per token) gives the confidence."""
    tokenizer = loaded.tokenizer
    ids = tokenizer(prepared, add_special_tokens=True, truncation=False)["input_ids"]
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in ids]
    forced = loaded.family.generate_kwargs(target).get("forced_bos_token_id")
    prefix = [tokenizer.convert_ids_to_tokens(forced)] if forced is not None else []
    max_new = max(budget.tokens(max(len(row) for row in ids)), minimum)
    banned = loaded.model.generation_config.suppress_tokens or []  # as generate() honours it
    suppress = [tokenizer.convert_ids_to_tokens(int(token)) for token in banned]
    use_vmap = bool(loaded.vocabulary(target))  # VOCABULARY_LANGUAGES (vocabulary.py)
    how = ct2.Decoding(prefix, max_new, minimum, repetition_limit, num_beams, suppress, use_vmap)
    rows = ct2.decode(loaded.model, tokens, how, tokenizer)
    translations = []
    for row in rows:
        repeats = repetition_limit if row.looping else 0
        kept, looped = generation.collapse(row.ids, repeats, tokenizer.pad_token_id)
        ended = bool(kept) and kept[-1] == tokenizer.eos_token_id
        at_budget = not ended and not looped and len(kept) + len(prefix) >= max_new > minimum
        text = tokenizer.decode(kept, skip_special_tokens=True).strip()
        translations.append(Translation(text, round(math.exp(row.score), 4), at_budget, looped))
    return translations


def _translate_firefox(
    loaded: LoadedModel, texts: list[str], repetition_limit: int, apart: bool
) -> list[Translation]:
    """The same contract on a Firefox Translations model (inference/firefox.py): the engine
    gives text and no scores, so the confidence is 0.0, "not measured" (docs/TRANSLATION.md).
    An output over twice its source's characters (+16) is looked at in tokens: a looping tail
    is collapsed, and one over FIREFOX_RUNAWAY_RATIO x its source's tokens is at its budget
    (a normal output is not tokenized: two tokenizations fewer per piece)."""
    encode = loaded.tokenizer.encode
    translations = []
    for text, out in zip(texts, loaded.model.translate(texts, apart), strict=True):
        looped = at_budget = False
        if len(out) > 2 * len(text) + 16:
            ids = encode(out, add_special_tokens=False).ids
            kept, looped = generation.collapse(ids, repetition_limit, None)
            if looped:
                out = loaded.tokenizer.decode(kept, skip_special_tokens=True)
            source_tokens = len(encode(text, add_special_tokens=False).ids)
            at_budget = len(kept) > FIREFOX_RUNAWAY_RATIO * source_tokens + 8
        translations.append(Translation(out.strip(), 0.0, at_budget, looped))
    return translations


def _confidences(loaded: LoadedModel, output: Any, num_beams: int) -> list[float]:
    """The geometric mean of the chosen tokens' probabilities, per sequence.

    Computed step by step with a logsumexp (compute_transition_scores materialises a full
    log-softmax of every step: a quarter of a batch's time on CPU at t5-small's vocabulary)."""
    beam_scores = getattr(output, "sequences_scores", None)
    if num_beams > 1 and beam_scores is not None:
        return [round(math.exp(float(score)), 4) for score in beam_scores]
    steps = len(output.scores)
    chosen = output.sequences[:, -steps:]
    pad = loaded.tokenizer.pad_token_id
    total = torch.zeros(chosen.shape[0])
    count = torch.zeros(chosen.shape[0])
    for step, scores in enumerate(output.scores):
        token = chosen[:, step]
        logp = scores.gather(1, token[:, None]).squeeze(1) - torch.logsumexp(scores, dim=-1)
        valid = torch.isfinite(logp) & (token != pad)
        total += torch.where(valid, logp, 0.0).float().cpu()
        count += valid.float().cpu()
    means = total / count.clamp(min=1)
    return [
        round(math.exp(float(mean)), 4) if n else 0.0 for mean, n in zip(means, count, strict=True)
    ]
