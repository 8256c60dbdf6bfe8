"""The CTranslate2 engine (`INFERENCE_ENGINE=ctranslate2`): the same families, budget, loop stop
and confidence as the transformers engine, on CTranslate2's C++ decoder.

A model is converted once, with CTranslate2's own converter, from the same hub id or local
directory that `from_pretrained` reads, into `MODELS_PATH/ctranslate2/<name>-<revision>-<compute
type>/`, written to a temporary directory and renamed (workers converting at once never see half a
model); later loads reuse it. QUANTIZATION_LEVEL maps to a compute type (`compute_type`); what
CTranslate2 cannot do on the device is a clear refusal. The tokenizer stays the model's own
(transformers), so pieces, prompts and language tokens are the same as with transformers:
T5's task prefix is in the text, NLLB's and M2M100's target language is the target prefix,
Marian's `>>xx<<` token is in the text."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from translator.contracts.errors import QuantizationUnsupported
from translator.inference import generation

log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

# QUANTIZATION_LEVEL -> CTranslate2 compute type, per device kind
_COMPUTE_TYPES: dict[tuple[str, str], str] = {
    ("float32", "cpu"): "float32",
    ("float32", "cuda"): "float32",
    ("bfloat16", "cpu"): "bfloat16",
    ("bfloat16", "cuda"): "bfloat16",
    ("float16", "cuda"): "float16",
    ("int8", "cpu"): "int8_float32",
    ("int8", "cuda"): "int8_float16",
}
_REFUSALS = {
    ("float16", "cpu"): "CTranslate2 has no float16 on CPU; use int8 or float32",
    ("int4", "cpu"): "CTranslate2 has no int4; use int8",
    ("int4", "cuda"): "CTranslate2 has no int4; use int8 (int8_float16) or float16",
}


def device_of(device: str) -> tuple[str, int]:
    """`cuda:1` -> ("cuda", 1); `cpu` -> ("cpu", 0)."""
    kind, _, index = device.partition(":")
    return kind, int(index or 0)


def preferred(level: str, device: str) -> str:
    """INFERENCE_ENGINE=auto: ctranslate2 on a CPU where it runs `level` (it measured 1.35x
    transformers' rate at int8 with about 40% less memory, and the same at float32: BENCHMARKS
    §11); transformers elsewhere (CUDA: its CTranslate2 path is not measured here yet)."""
    if device_of(device)[0] != "cpu":
        return "transformers"
    try:
        compute_type(level, device)
    except QuantizationUnsupported:
        return "transformers"
    return "ctranslate2"


def compute_type(level: str, device: str) -> str:
    """The compute type for QUANTIZATION_LEVEL on `device`, or QuantizationUnsupported."""
    import ctranslate2

    kind, index = device_of(device)
    refusal = _REFUSALS.get((level, kind))
    if refusal:
        raise QuantizationUnsupported(level, device, refusal)
    wanted = _COMPUTE_TYPES.get((level, kind))
    if wanted is None:
        raise QuantizationUnsupported(level, device, "no CTranslate2 compute type for it")
    supported = ctranslate2.get_supported_compute_types(kind, index)
    if wanted not in supported:
        raise QuantizationUnsupported(
            level,
            device,
            f"CTranslate2 cannot run {wanted} here (it can: {', '.join(sorted(supported))})",
        )
    return wanted


def converted(source: Path, name: str, revision: str, compute: str, models_path: Path) -> Path:
    """The CTranslate2 model of `source` (a local directory), converted once and kept."""
    from ctranslate2.converters import TransformersConverter

    target = models_path / "ctranslate2" / _SAFE.sub("_", f"{name}-{revision}-{compute}")

    def convert(scratch: Path) -> None:
        log.info("converting %s to CTranslate2 (%s) in %s", name, compute, target)
        TransformersConverter(str(source)).convert(str(scratch), quantization=compute, force=True)

    return _written_once(target, "model.bin", convert)


def with_vocabulary(path: Path, lines: list[str]) -> tuple[Path, str]:
    """The converted model at `path` with `lines` as its vocabulary map: a sibling directory of
    links to its files and its own vmap.txt, named by the map's digest (returned with it)."""
    text = "\n".join(lines) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]

    def link(scratch: Path) -> None:
        for item in path.iterdir():
            if item.name != "vmap.txt":
                (scratch / item.name).symlink_to(Path("..") / path.name / item.name)
        (scratch / "vmap.txt").write_text(text, encoding="utf-8")
        scratch.chmod(path.stat().st_mode & 0o777)  # mkdtemp's 0700: as the model's own

    return _written_once(path.with_name(f"{path.name}-vmap-{digest}"), "vmap.txt", link), digest


def _written_once(target: Path, marker: str, write: Callable[[Path], None]) -> Path:
    """`target`, written by `write` into a temporary sibling directory renamed into place once
    complete (`marker` in it says so): a crash leaves no half-written model, and of two workers
    writing at once the first rename wins and the other uses it."""
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(scratch)
        try:
            os.rename(scratch, target)
        except OSError:  # another worker wrote it first: theirs is as good
            if not (target / marker).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


@dataclass
class Ct2Model:
    """What `LoadedModel.model` holds for this engine: the translator, with the model's
    transformers config and generation config (the budget's ceiling, the input limit)."""

    translator: Any
    config: Any
    generation_config: Any
    path: Path
    compute_type: str
    vocabulary: frozenset[str] = frozenset()  # the target tokens it can generate

    @classmethod
    def open(cls, translator: Any, config: Any, generation: Any, path: Path, compute: str) -> Any:
        names = ("target_vocabulary.json", "shared_vocabulary.json")
        found = [path / name for name in names if (path / name).is_file()]
        vocabulary = frozenset(json.loads(found[0].read_text())) if found else frozenset()
        return cls(translator, config, generation, path, compute, vocabulary)


@dataclass
class _LoopWatch:
    """The repetition stop, fed one token at a time by CTranslate2's step callback."""

    repeats: int
    skip: int  # target-prefix tokens before what the model generates
    minimum: int
    rows: dict[int, list[int]] = field(default_factory=dict)
    stopped: set[int] = field(default_factory=set)

    def __call__(self, step: Any) -> bool:
        row = self.rows.setdefault(step.batch_id, [])
        if step.step < self.skip:
            return False
        row.append(int(step.token_id))
        if len(row) < generation.MIN_LOOP or len(row) <= self.minimum:
            return False
        tail = row[-generation.MAX_BLOCK * max(self.repeats, generation.MIN_LOOP) :]
        if generation.loop_length(tail, self.repeats):
            self.stopped.add(step.batch_id)
            return True
        return False


@dataclass(frozen=True)
class Decoded:
    ids: list[int]  # the generated token ids, the target prefix left out, the end token kept
    score: float  # mean log-probability per token
    looping: bool  # the loop stop ended this row


@dataclass(frozen=True)
class Decoding:
    prefix: list[str]  # the target prefix (NLLB's, M2M100's language token)
    max_new: int  # tokens generated at most, the prefix counted (as transformers' forced token)
    minimum: int  # the model's own min_new_tokens
    repetition_limit: int
    num_beams: int
    suppress: list[str]  # tokens never generated (the generation config's suppress_tokens)
    use_vmap: bool = False  # the target's vocabulary only (vocabulary.py)


def decode(
    model: Ct2Model, tokens: list[list[str]], how: Decoding, tokenizer: Any
) -> list[Decoded]:
    """One translate_batch, never truncating the input (`max_input_length=0`)."""
    prefix = how.prefix
    watch = None
    if how.repetition_limit and how.num_beams == 1:
        watch = _LoopWatch(how.repetition_limit, len(prefix), how.minimum)
    results = model.translator.translate_batch(
        tokens,
        target_prefix=[prefix] * len(tokens) if prefix else None,
        beam_size=how.num_beams,
        max_decoding_length=how.max_new,
        min_decoding_length=min(how.minimum, how.max_new),
        max_input_length=0,
        use_vmap=how.use_vmap,
        suppress_sequences=[[t] for t in how.suppress if t in model.vocabulary] or None,
        return_scores=True,
        return_end_token=True,
        callback=watch,
    )
    decoded = []
    for index, result in enumerate(results):
        forced = result.hypotheses[0][: len(prefix)]
        if forced != prefix:  # never a translation into another language than asked
            raise RuntimeError(f"CTranslate2 decoded {forced} for the target prefix {prefix}")
        hypothesis = result.hypotheses[0][len(prefix) :]
        ids = [int(i) for i in tokenizer.convert_tokens_to_ids(hypothesis)]
        looping = watch is not None and index in watch.stopped
        decoded.append(Decoded(ids, float(result.scores[0]), looping))
    return decoded
