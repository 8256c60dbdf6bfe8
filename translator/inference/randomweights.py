"""Models with RANDOM WEIGHTS, built from a config, for tests, benchmarks and offline demos.

Their output is meaningless text; they exercise the real loading path (`from_pretrained` on the
directory written here), the real tokenizers and the real `generate()` at a real model's shape."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from translator.inference.languages import NLLB_CODES
from translator.inference.models import RANDOM_WEIGHTS_FLAG

Architecture = Literal["t5", "nllb", "m2m100", "marian"]
ARCHITECTURES: tuple[Architecture, ...] = ("t5", "nllb", "m2m100", "marian")

_CORPUS = (
    "Hello everyone, how are you today? The weather is nice and the meeting starts at noon.",
    "Bonjour à tous, comment allez-vous ? La réunion commence à midi, ne soyez pas en retard.",
    "Hola a todos, ¿cómo están? Nos vemos mañana en la estación después del trabajo.",
    "Guten Morgen zusammen, wie geht es euch? Wir treffen uns morgen am Bahnhof.",
    "Buongiorno a tutti, come state? Ci vediamo domani alla stazione dopo il lavoro.",
    "Bom dia a todos, como vocês estão? Nos vemos amanhã na estação depois do trabalho.",
)


@dataclass(frozen=True)
class Shape:
    d_model: int
    ffn: int
    layers: int
    heads: int
    vocab: int


SHAPES: dict[str, Shape] = {
    "tiny": Shape(d_model=32, ffn=64, layers=2, heads=2, vocab=400),
    # t5-small: d_model 512, d_ff 2048, 6+6 layers, 8 heads, 32128 tokens (60M parameters)
    "small": Shape(d_model=512, ffn=2048, layers=6, heads=8, vocab=32128),
    # nllb-200-distilled-600M: d_model 1024, ffn 4096, 12+12 layers, 16 heads, 256206 tokens
    "nllb-600m": Shape(d_model=1024, ffn=4096, layers=12, heads=16, vocab=256206),
}


def build(
    architecture: Architecture,
    out_dir: Path,
    *,
    shape: str = "tiny",
    output_tokens: int = 8,
    fixed_length: bool = False,
    pair: tuple[str, str] = ("en", "fr"),
    seed: int = 0,
) -> Path:
    """Write tokenizer + random-weight model to `out_dir`; loadable with from_pretrained."""
    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    dims = SHAPES[shape]
    tokenizer = _TOKENIZERS[architecture](out_dir, dims.vocab, pair)
    model = _MODELS[architecture](tokenizer, dims)
    model.config.update({RANDOM_WEIGHTS_FLAG: True})
    _generation(model, tokenizer, output_tokens, fixed_length)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir


def _vocab_size(tokenizer: Any) -> int:
    """Embeddings for every token id, and for M2M100's "made-up words" after them (as its
    checkpoints have: CTranslate2's converter counts them)."""
    return int(max(tokenizer.get_vocab().values())) + 1 + getattr(tokenizer, "num_madeup_words", 0)


def _generation(model: Any, tokenizer: Any, output_tokens: int, fixed: bool) -> None:
    config = model.generation_config
    config.max_new_tokens = output_tokens
    config.min_new_tokens = output_tokens if fixed else min(2, output_tokens)
    config.max_length = None
    banned = {tokenizer.pad_token_id, tokenizer.unk_token_id} - {None}
    config.suppress_tokens = sorted(banned - {getattr(config, "forced_eos_token_id", None)})


def _pieces(limit: int) -> list[str]:
    """Word pieces for a synthetic vocabulary: characters, then corpus words, then filler."""
    words = " ".join(_CORPUS).replace(",", " ").replace(".", " ").split()
    chars = sorted(set("".join(_CORPUS)) - {" "})
    pieces = list(
        dict.fromkeys(["▁", *chars, *("▁" + c for c in chars), *("▁" + w for w in words)])
    )
    filler = (f"▁w{i}" for i in range(limit))
    return (pieces + list(filler))[:limit]


def _t5_tokenizer(out_dir: Path, vocab: int, pair: tuple[str, str]) -> Any:
    from transformers import T5Tokenizer

    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces = [(p, -float(len(p))) for p in _pieces(vocab - len(specials))]
    return T5Tokenizer(vocab=specials + pieces, extra_ids=0)


def _nllb_tokenizer(out_dir: Path, vocab: int, pair: tuple[str, str]) -> Any:
    from transformers import NllbTokenizer

    ids = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    budget = max(vocab - 200 - len(ids), 64)  # NLLB adds its 202 language codes after these
    pieces = _pieces(budget)
    if budget - len(_pieces(0)) >= _SPREAD_FROM:
        pieces = _spread(pieces)
    for piece in pieces:
        ids.setdefault(piece, len(ids))
    return NllbTokenizer(vocab=ids, merges=[], src_lang=NLLB_CODES[pair[0]])


_SPREAD_FROM = 1000  # filler pieces: a production-sized vocabulary (a tiny one stays Latin)


def _spread(pieces: list[str]) -> list[str]:
    """A production-sized NLLB vocabulary's filler spread over the scripts NLLB-200's 202
    languages are written in, in their proportions (126 Latin, 21 Arabic, 12 Cyrillic...), as a
    real multilingual vocabulary covers its languages' scripts: `▁w17` becomes `▁ж17` for a
    Cyrillic one. The real vocabulary's shares are not these (not measurable without it); this
    gives VOCABULARY_LANGUAGES something to cut."""
    import regex
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    from translator.inference.vocabulary import unicode_scripts

    bmp = "".join(map(chr, range(0x41, 0x10000)))
    letters: dict[str, str] = {}
    for code in FAIRSEQ_LANGUAGE_CODES:
        script = unicode_scripts(code)[0]
        found = regex.search(rf"[\p{{sc={script}}}&&\p{{L}}]", bmp, flags=regex.V1)
        if found:
            letters[code] = found.group()
    codes = sorted(letters)
    spread = []
    for piece in pieces:
        index = piece[2:]
        if piece.startswith("▁w") and index.isdigit():
            piece = f"▁{letters[codes[int(index) % len(codes)]]}{index}"
        spread.append(piece)
    return spread


def _sentencepiece(vocab: int) -> bytes:
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS * 20),
        model_writer=model,
        vocab_size=min(vocab, 200),
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        unk_id=2,
        eos_id=1,
        bos_id=-1,
        pad_id=-1,
        minloglevel=2,
    )
    return model.getvalue()


def _spm_vocab(spm_model: bytes, path: Path, pad_last: bool = False) -> Path:
    """The pieces' ids; `pad_last`: `<pad>` is the last id, as in OPUS-MT's Marian checkpoints
    (CTranslate2's converter drops that row, which transformers adds to start the decoder)."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=spm_model)
    ids = {"</s>": 0, "<unk>": 1} if pad_last else {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for i in range(processor.get_piece_size()):
        ids.setdefault(processor.id_to_piece(i), len(ids))
    if pad_last:
        ids["<pad>"] = len(ids)
    path.write_text(json.dumps(ids))
    return path


def _marian_tokenizer(out_dir: Path, vocab: int, pair: tuple[str, str]) -> Any:
    from transformers import MarianTokenizer

    spm_model = _sentencepiece(vocab)
    for name in ("source.spm", "target.spm"):
        (out_dir / name).write_bytes(spm_model)
    vocab_file = _spm_vocab(spm_model, out_dir / "vocab.json", pad_last=True)
    return MarianTokenizer(
        str(out_dir / "source.spm"),
        str(out_dir / "target.spm"),
        str(vocab_file),
        source_lang=pair[0],
        target_lang=pair[1],
    )


def _m2m100_tokenizer(out_dir: Path, vocab: int, pair: tuple[str, str]) -> Any:
    from transformers import M2M100Tokenizer

    spm_model = _sentencepiece(vocab)
    (out_dir / "sentencepiece.bpe.model").write_bytes(spm_model)
    vocab_file = _spm_vocab(spm_model, out_dir / "vocab.json")
    tokenizer = M2M100Tokenizer(
        str(vocab_file), str(out_dir / "sentencepiece.bpe.model"), src_lang=pair[0]
    )
    # Real M2M100 checkpoints list their language tokens as special tokens (decode skips them)
    languages = list(tokenizer.lang_token_to_id)
    tokenizer.add_special_tokens({"additional_special_tokens": languages})
    return tokenizer


def _t5_model(tokenizer: Any, dims: Shape) -> Any:
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=_vocab_size(tokenizer),
        d_model=dims.d_model,
        d_ff=dims.ffn,
        d_kv=dims.d_model // dims.heads,
        num_layers=dims.layers,
        num_heads=dims.heads,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return T5ForConditionalGeneration(config)


def _bart_like(config_cls: Any, tokenizer: Any, dims: Shape, **extra: Any) -> Any:
    return config_cls(
        vocab_size=_vocab_size(tokenizer),
        d_model=dims.d_model,
        encoder_layers=dims.layers,
        decoder_layers=dims.layers,
        encoder_attention_heads=dims.heads,
        decoder_attention_heads=dims.heads,
        encoder_ffn_dim=dims.ffn,
        decoder_ffn_dim=dims.ffn,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
        **extra,
    )


def _m2m100_model(tokenizer: Any, dims: Shape) -> Any:
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    config = _bart_like(
        M2M100Config,
        tokenizer,
        dims,
        bos_token_id=tokenizer.bos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    return M2M100ForConditionalGeneration(config)


def _marian_model(tokenizer: Any, dims: Shape) -> Any:
    from transformers import MarianConfig, MarianMTModel

    config = _bart_like(
        MarianConfig, tokenizer, dims, decoder_start_token_id=tokenizer.pad_token_id
    )
    return MarianMTModel(config)


_TOKENIZERS = {
    "t5": _t5_tokenizer,
    "nllb": _nllb_tokenizer,
    "m2m100": _m2m100_tokenizer,
    "marian": _marian_tokenizer,
}
_MODELS = {"t5": _t5_model, "nllb": _m2m100_model, "m2m100": _m2m100_model, "marian": _marian_model}
