"""What the configured models can translate, known without loading them (no torch): the family
from the model's `config.json` and tokenizer config when it is on disk, else from its hub id;
the languages from the family's conventions. The HTTP API's `/languages` and `/models` say what
this catalog says; the worker's own check (families.py) stays the judge of each request."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from translator.contracts.messages import MODEL_TYPES, ModelType
from translator.contracts.settings import TranslatorSettings
from translator.inference import firefox
from translator.inference.families import opus_pair
from translator.inference.languages import T5_PAIRS, nllb_keys
from translator.inference.locations import local_path, model_name
from translator.inference.modelfiles import read_json_object

_M2M_TOKEN = re.compile(r"^__([a-z]{2})__$")
Pair = tuple[str, str]


@dataclass(frozen=True)
class ModelEntry:
    model_id: str
    name: str
    # t5, nllb, m2m100, marian, firefox, or "unknown" (not on disk, a name that says nothing)
    family: str
    pairs: frozenset[Pair]  # (source, target) language keys (languages.py)
    targets: frozenset[str] = field(init=False)  # the keys it writes

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", frozenset(target for _, target in self.pairs))

    @property
    def languages(self) -> list[str]:
        return sorted({code for pair in self.pairs for code in pair})


def _all_pairs(codes: set[str]) -> frozenset[Pair]:
    return frozenset((s, t) for s in codes for t in codes if s != t)


def _m2m_codes(where: Path) -> set[str]:
    tokens = read_json_object(where / "special_tokens_map.json").get(
        "additional_special_tokens", []
    )
    found = {_M2M_TOKEN.match(str(t)) for t in tokens}
    return {m.group(1) for m in found if m}


def describe(model_id: str, models_path: Path) -> ModelEntry:
    marian_student = firefox.pair_of(model_id, models_path)
    if marian_student is not None:
        return ModelEntry(model_id, model_name(model_id), "firefox", frozenset({marian_student}))
    where = local_path(model_id, models_path)
    lowered = model_id.lower()
    family = "unknown"
    if where is not None:
        kind = read_json_object(where / "config.json").get("model_type", "")
        tokenizer = str(
            read_json_object(where / "tokenizer_config.json").get("tokenizer_class", "")
        )
        if kind == "m2m_100":
            family = "nllb" if "nllb" in tokenizer.lower() else "m2m100"
        elif kind in ("t5", "marian"):
            family = kind
    else:
        for marker, named in (("nllb", "nllb"), ("m2m100", "m2m100"), ("opus-mt", "marian")):
            if marker in lowered:
                family = named
                break
        else:
            family = "t5" if "t5" in lowered else "unknown"
    pairs: frozenset[Pair] = frozenset()
    if family == "t5":
        pairs = T5_PAIRS
    elif family == "nllb":
        pairs = _all_pairs(set(nllb_keys()))
    elif family == "m2m100" and where is not None:
        pairs = _all_pairs(_m2m_codes(where))
    elif family == "marian":
        config = read_json_object(where / "tokenizer_config.json") if where else {}
        source, target = config.get("source_lang"), config.get("target_lang")
        pair = (str(source), str(target)) if source and target else opus_pair(model_id)
        pairs = frozenset({pair}) if pair else frozenset()
    return ModelEntry(model_id, model_name(model_id), family, pairs)


@dataclass(frozen=True)
class Catalog:
    tiers: dict[ModelType, ModelEntry]
    pair_models: dict[Pair, ModelEntry]
    fallback: bool

    @classmethod
    def of(cls, settings: TranslatorSettings) -> Catalog:
        tiers = {t: describe(settings.model_id(t), settings.models_path) for t in MODEL_TYPES}
        dedicated = {}
        for key, model_id in settings.pair_table().items():
            source, _, target = key.partition("-")
            entry = describe(model_id, settings.models_path)
            dedicated[(source, target)] = ModelEntry(
                entry.model_id, entry.name, entry.family, frozenset({(source, target)})
            )
        return cls(tiers, dedicated, settings.model_fallback)

    def pairs(self, model_type: ModelType = "basic") -> frozenset[Pair]:
        """The pairs a request of this tier can be translated in (its fallbacks included)."""
        start = MODEL_TYPES.index(model_type)
        tiers = MODEL_TYPES[start:] if self.fallback else (model_type,)
        found: set[Pair] = set(self.pair_models)
        for tier in tiers:
            found |= self.tiers[tier].pairs
        return frozenset(found)

    def writes(self, target: str, model_type: ModelType = "basic") -> bool:
        """Whether a model a request of this tier may use (its fallbacks, the pair table) writes
        the language `target` (a key): a target none writes gets its own error at once."""
        start = MODEL_TYPES.index(model_type)
        tiers = MODEL_TYPES[start:] if self.fallback else (model_type,)
        return any(target in self.tiers[tier].targets for tier in tiers) or any(
            target == wanted for _, wanted in self.pair_models
        )

    def targets(self, model_type: ModelType = "basic") -> dict[str, list[str]]:
        """Each source language and the targets it can go to."""
        by_source: dict[str, set[str]] = {}
        for source, target in self.pairs(model_type):
            by_source.setdefault(source, set()).add(target)
        return {source: sorted(targets) for source, targets in sorted(by_source.items())}
