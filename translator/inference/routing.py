"""Which model translates a pair: the one the pair table names for it (PAIR_MODELS, the bundled
Firefox Translations models), else the request's tier, else the next tier that can (basic ->
medium -> premium, MODEL_FALLBACK). A pair none of them can do goes through English when both
halves can (pt -> fr is pt -> en, then en -> fr: the result says so). A pair no model can do is
UnsupportedLanguage: an error result, never a translation into the wrong language."""

from __future__ import annotations

from dataclasses import dataclass, replace

from translator.contracts.errors import ModelUnavailable, UnsupportedLanguage
from translator.contracts.messages import MODEL_TYPES, ModelType
from translator.contracts.settings import TranslatorSettings
from translator.inference.languages import display_name
from translator.inference.models import LoadedModel, ModelRegistry


@dataclass(frozen=True)
class Route:
    loaded: LoadedModel
    tier: str  # the tier whose model is used, or "pair" for a PAIR_MODELS entry
    fell_back_from: ModelType | None = None  # the tier asked for, when another one serves
    then: Route | None = None  # through English: this route writes English, `then` the target

    @property
    def target(self) -> str | None:
        """The language this route writes before `then` (PIVOT), None when it is direct."""
        return PIVOT if self.then is not None else None


PIVOT = "en"


def route(
    registry: ModelRegistry,
    settings: TranslatorSettings,
    model_type: ModelType,
    source: str,
    target: str,
) -> Route:
    """The model for source -> target (loading it if needed: call from a thread); else the two
    through English; else the direct route's error."""
    try:
        return _direct(registry, settings, model_type, source, target)
    except (UnsupportedLanguage, ModelUnavailable) as refused:
        if PIVOT in (source, target):
            raise
        try:
            first = _direct(registry, settings, model_type, source, PIVOT)
            second = _direct(registry, settings, model_type, PIVOT, target)
        except (UnsupportedLanguage, ModelUnavailable):
            raise refused from None
        return replace(first, then=second)


def _direct(
    registry: ModelRegistry,
    settings: TranslatorSettings,
    model_type: ModelType,
    source: str,
    target: str,
) -> Route:
    dedicated = settings.pair_model(source, target)
    if dedicated is not None:
        loaded = registry.get_id(dedicated)
        loaded.family.check_pair(source, target)
        return Route(loaded, "pair")
    start = MODEL_TYPES.index(model_type)
    tiers = MODEL_TYPES[start:] if settings.model_fallback else (model_type,)
    refusals: list[UnsupportedLanguage] = []
    for tier in tiers:
        loaded = registry.get(tier)
        try:
            loaded.family.check_pair(source, target)
        except UnsupportedLanguage as refused:
            refusals.append(refused)
            continue
        return Route(loaded, tier, model_type if tier != model_type else None)
    if len(refusals) == 1:
        raise refusals[0]
    tried = "; ".join(f"{tier}: {refusal}" for tier, refusal in zip(tiers, refusals, strict=True))
    code = refusals[0].code
    raise UnsupportedLanguage(code, "any tier", f"tried {tried}", display_name(code))
