"""Model families: how each one is told the source and target language.

T5 takes a task prefix, NLLB and M2M100 take language tokens, Marian is one pair per model
(or `>>xx<<` target tokens for multi-target models), so is a Firefox Translations model. An
unsupported pair raises UnsupportedLanguage: never a translation into the wrong language."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from translator.contracts.errors import UnsupportedLanguage
from translator.inference.languages import T5_NAMES, T5_PAIRS, display_name, nllb_code

_OPUS_PAIR = re.compile(r"opus-mt-([a-z]{2,3})-([a-z]{2,3})$", re.IGNORECASE)
_TARGET_TOKEN = re.compile(r">>[A-Za-z_]{2,8}<<")


class Family(ABC):
    name: str

    def __init__(self, model_id: str, tokenizer: Any) -> None:
        self.model_id = model_id
        self.tokenizer = tokenizer

    @abstractmethod
    def check_pair(self, source: str, target: str) -> None:
        """Raise UnsupportedLanguage unless this model translates source -> target."""

    def prepare(self, texts: list[str], source: str, target: str) -> list[str]:
        """Set the tokenizer up for this pair; return the texts to encode."""
        return texts

    def generate_kwargs(self, target: str) -> dict[str, Any]:
        return {}

    def _unsupported(self, code: str, detail: str) -> UnsupportedLanguage:
        return UnsupportedLanguage(code, self.model_id, detail, display_name(code))


class T5Family(Family):
    name = "t5"

    def check_pair(self, source: str, target: str) -> None:
        for code in (source, target):
            if code not in T5_NAMES:
                raise self._unsupported(code, f"T5 knows only {', '.join(sorted(T5_NAMES))}")
        if (source, target) not in T5_PAIRS:
            pairs = ", ".join(f"{s}->{t}" for s, t in sorted(T5_PAIRS))
            raise self._unsupported(target, f"T5 translates only {pairs}, not {source}->{target}")

    def prepare(self, texts: list[str], source: str, target: str) -> list[str]:
        prefix = f"translate {T5_NAMES[source]} to {T5_NAMES[target]}: "
        return [prefix + text for text in texts]


class NllbFamily(Family):
    name = "nllb"

    def __init__(self, model_id: str, tokenizer: Any) -> None:
        super().__init__(model_id, tokenizer)
        # each language key's code, looked up once: the tokenizer's own lookups build a dict
        # of NLLB's 256k tokens (0.2 s a call), which per generate() dominated a GPU's batch
        self._codes: dict[str, str | None] = {}

    def _code(self, language: str) -> str:
        if language not in self._codes:
            code = nllb_code(language)  # the language table: `pt-BR` is por_Latn
            known = code is not None and self.tokenizer.convert_tokens_to_ids(code) not in (
                None, self.tokenizer.unk_token_id,
            )  # fmt: skip
            self._codes[language] = code if known else None
        found = self._codes[language]
        if found is None:
            raise self._unsupported(language, "NLLB-200 does not write it")
        return found

    def check_pair(self, source: str, target: str) -> None:
        self._code(source)
        self._code(target)

    def prepare(self, texts: list[str], source: str, target: str) -> list[str]:
        self.tokenizer.src_lang = self._code(source)
        return texts

    def generate_kwargs(self, target: str) -> dict[str, Any]:
        return {"forced_bos_token_id": self.tokenizer.convert_tokens_to_ids(self._code(target))}


class M2M100Family(Family):
    name = "m2m100"

    def check_pair(self, source: str, target: str) -> None:
        known = self.tokenizer.lang_code_to_id
        for code in (source, target):
            if code not in known:
                raise self._unsupported(code, "not among the model's language tokens")

    def prepare(self, texts: list[str], source: str, target: str) -> list[str]:
        self.tokenizer.src_lang = source
        return texts

    def generate_kwargs(self, target: str) -> dict[str, Any]:
        return {"forced_bos_token_id": self.tokenizer.get_lang_id(target)}


class MarianFamily(Family):
    name = "marian"

    def __init__(self, model_id: str, tokenizer: Any) -> None:
        super().__init__(model_id, tokenizer)
        self.source, self.target = _marian_pair(model_id, tokenizer)
        self._target_tokens = {t for t in tokenizer.get_vocab() if _TARGET_TOKEN.fullmatch(t)}

    def _target_token(self, target: str) -> str | None:
        token = f">>{target}<<"
        return token if token in self._target_tokens else None

    def check_pair(self, source: str, target: str) -> None:
        if self.source and source != self.source:
            raise self._unsupported(source, f"this Marian model translates from {self.source}")
        if self._target_token(target) is None and target != self.target:
            raise self._unsupported(target, f"this Marian model translates into {self.target}")

    def prepare(self, texts: list[str], source: str, target: str) -> list[str]:
        token = self._target_token(target)
        return [f"{token} {text}" for text in texts] if token else texts


class FirefoxFamily(Family):
    """A Firefox Translations model: one pair, no prompt, no language tokens."""

    name = "firefox"

    def __init__(self, model_id: str, tokenizer: Any, source: str, target: str) -> None:
        super().__init__(model_id, tokenizer)
        self.source, self.target = source, target

    def check_pair(self, source: str, target: str) -> None:
        if source != self.source:
            raise self._unsupported(source, f"this model translates from {self.source} only")
        if target != self.target:
            raise self._unsupported(target, f"this model translates into {self.target} only")


class EchoFamily(Family):
    """The benchmark-only echo backend: every pair passes, nothing is translated."""

    name = "echo"

    def check_pair(self, source: str, target: str) -> None:
        return None


def _marian_pair(model_id: str, tokenizer: Any) -> tuple[str, str]:
    kwargs = getattr(tokenizer, "init_kwargs", {})
    source, target = kwargs.get("source_lang"), kwargs.get("target_lang")
    if source and target:
        return str(source), str(target)
    return opus_pair(model_id) or ("", "")


def opus_pair(model_id: str) -> tuple[str, str] | None:
    """The pair an OPUS-MT model's name gives (`Helsinki-NLP/opus-mt-fr-en`: fr, en)."""
    match = _OPUS_PAIR.search(model_id.rstrip("/"))
    return (match.group(1).lower(), match.group(2).lower()) if match else None


def family_for(model_type: str, model_id: str, tokenizer: Any) -> Family:
    """The family of a loaded model, from its config's `model_type` and its tokenizer."""
    if model_type == "t5":
        return T5Family(model_id, tokenizer)
    if model_type == "marian":
        return MarianFamily(model_id, tokenizer)
    if model_type == "m2m_100":
        is_nllb = "nllb" in type(tokenizer).__name__.lower()
        return NllbFamily(model_id, tokenizer) if is_nllb else M2M100Family(model_id, tokenizer)
    raise ValueError(f"model {model_id}: unsupported architecture {model_type!r}")
