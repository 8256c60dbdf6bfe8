"""Language codes, one table for every entrance (the gateways, NATS, the HTTP API) and every
model family (docs/TRANSLATION.md, "Language codes").

A client writes a language as people do: an ISO 639-1 code (`pt`), an ISO 639-3 one (`por`,
`fuv`, `bas`), a BCP 47 tag with a script or a region (`zh-Hant`, `sr-Latn`, `pt-BR`, `pt-br`,
`zh-TW`, `en-US`, `pt_BR`), in any case, or LibreTranslate's `pb` and `zt`. `language()` reads
it into a `Language`: its base language (ISO 639-1 where there is one, else ISO 639-3, as
langcodes normalises it) and the script it is written in (the tag's, else the one its region
implies, else the language's usual one), and a `key`, the base alone when the script is the
usual one (`pt-BR` -> `pt`, `zh-TW` -> `zh-Hant`, `sr-Latn` -> `sr-Latn`). Models are asked in
keys; each family maps a key to its own convention (NLLB's FLORES-200 code, a T5 prefix); a
result names the language as the client wrote it. A region is accepted where CLDR says the
language is spoken (`pt-BR`, `zh-TW`), so that a typo is not read as a language."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import langcodes
from langcodes import data_dicts
from language_data.population_data import LANGUAGE_SPEAKING_POPULATION

# ISO 639-1 -> NLLB-200 (FLORES-200) code, for every NLLB-200 language that has a 639-1 code.
# Where NLLB holds several variants, the most widely written one is chosen (ar -> Modern
# Standard Arabic, fa -> Western Persian, zh -> Simplified Chinese, ms -> Standard Malay).
NLLB_CODES: dict[str, str] = {
    "af": "afr_Latn", "ak": "aka_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "as": "asm_Beng",
    "ay": "ayr_Latn", "az": "azj_Latn", "ba": "bak_Cyrl", "be": "bel_Cyrl", "bg": "bul_Cyrl",
    "bm": "bam_Latn", "bn": "ben_Beng", "bo": "bod_Tibt", "bs": "bos_Latn", "ca": "cat_Latn",
    "cs": "ces_Latn", "cy": "cym_Latn", "da": "dan_Latn", "de": "deu_Latn", "dz": "dzo_Tibt",
    "ee": "ewe_Latn", "el": "ell_Grek", "en": "eng_Latn", "eo": "epo_Latn", "es": "spa_Latn",
    "et": "est_Latn", "eu": "eus_Latn", "fa": "pes_Arab", "ff": "fuv_Latn", "fi": "fin_Latn",
    "fj": "fij_Latn", "fo": "fao_Latn", "fr": "fra_Latn", "ga": "gle_Latn", "gd": "gla_Latn",
    "gl": "glg_Latn", "gn": "grn_Latn", "gu": "guj_Gujr", "ha": "hau_Latn", "he": "heb_Hebr",
    "hi": "hin_Deva", "hr": "hrv_Latn", "ht": "hat_Latn", "hu": "hun_Latn", "hy": "hye_Armn",
    "id": "ind_Latn", "ig": "ibo_Latn", "is": "isl_Latn", "it": "ita_Latn", "ja": "jpn_Jpan",
    "jv": "jav_Latn", "ka": "kat_Geor", "kg": "kon_Latn", "ki": "kik_Latn", "kk": "kaz_Cyrl",
    "km": "khm_Khmr", "kn": "kan_Knda", "ko": "kor_Hang", "kr": "knc_Latn", "ks": "kas_Arab",
    "ku": "kmr_Latn", "ky": "kir_Cyrl", "lb": "ltz_Latn", "lg": "lug_Latn", "li": "lim_Latn",
    "ln": "lin_Latn", "lo": "lao_Laoo", "lt": "lit_Latn", "lv": "lvs_Latn", "mg": "plt_Latn",
    "mi": "mri_Latn", "mk": "mkd_Cyrl", "ml": "mal_Mlym", "mn": "khk_Cyrl", "mr": "mar_Deva",
    "ms": "zsm_Latn", "mt": "mlt_Latn", "my": "mya_Mymr", "nb": "nob_Latn", "ne": "npi_Deva",
    "nl": "nld_Latn", "nn": "nno_Latn", "no": "nob_Latn", "ny": "nya_Latn", "oc": "oci_Latn",
    "om": "gaz_Latn", "or": "ory_Orya", "pa": "pan_Guru", "pl": "pol_Latn", "ps": "pbt_Arab",
    "pt": "por_Latn", "qu": "quy_Latn", "rn": "run_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl",
    "rw": "kin_Latn", "sa": "san_Deva", "sc": "srd_Latn", "sd": "snd_Arab", "sg": "sag_Latn",
    "si": "sin_Sinh", "sk": "slk_Latn", "sl": "slv_Latn", "sm": "smo_Latn", "sn": "sna_Latn",
    "so": "som_Latn", "sq": "als_Latn", "sr": "srp_Cyrl", "ss": "ssw_Latn", "st": "sot_Latn",
    "su": "sun_Latn", "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml", "te": "tel_Telu",
    "tg": "tgk_Cyrl", "th": "tha_Thai", "ti": "tir_Ethi", "tk": "tuk_Latn", "tl": "tgl_Latn",
    "tn": "tsn_Latn", "tr": "tur_Latn", "ts": "tso_Latn", "tt": "tat_Cyrl", "tw": "twi_Latn",
    "ug": "uig_Arab", "uk": "ukr_Cyrl", "ur": "urd_Arab", "uz": "uzn_Latn", "vi": "vie_Latn",
    "wo": "wol_Latn", "xh": "xho_Latn", "yi": "ydd_Hebr", "yo": "yor_Latn", "zh": "zho_Hans",
    "zu": "zul_Latn",
}  # fmt: skip

# The language names in T5's task prefixes ("translate English to French: ").
T5_NAMES: dict[str, str] = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian"}
# The only directions the original T5 checkpoints were trained on.
T5_PAIRS: frozenset[tuple[str, str]] = frozenset({("en", "de"), ("en", "fr"), ("en", "ro")})

# Every language NLLB-200 writes: its FLORES-200 codes (ISO 639-3 and script), as the
# tokenizer's language tokens name them.
_FLORES = """
    ace_Arab ace_Latn acm_Arab acq_Arab aeb_Arab afr_Latn ajp_Arab aka_Latn amh_Ethi apc_Arab
    arb_Arab ars_Arab ary_Arab arz_Arab asm_Beng ast_Latn awa_Deva ayr_Latn azb_Arab azj_Latn
    bak_Cyrl bam_Latn ban_Latn bel_Cyrl bem_Latn ben_Beng bho_Deva bjn_Arab bjn_Latn bod_Tibt
    bos_Latn bug_Latn bul_Cyrl cat_Latn ceb_Latn ces_Latn cjk_Latn ckb_Arab crh_Latn cym_Latn
    dan_Latn deu_Latn dik_Latn dyu_Latn dzo_Tibt ell_Grek eng_Latn epo_Latn est_Latn eus_Latn
    ewe_Latn fao_Latn pes_Arab fij_Latn fin_Latn fon_Latn fra_Latn fur_Latn fuv_Latn gla_Latn
    gle_Latn glg_Latn grn_Latn guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hne_Deva hrv_Latn
    hun_Latn hye_Armn ibo_Latn ilo_Latn ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan kab_Latn
    kac_Latn kam_Latn kan_Knda kas_Arab kas_Deva kat_Geor knc_Arab knc_Latn kaz_Cyrl kbp_Latn
    kea_Latn khm_Khmr kik_Latn kin_Latn kir_Cyrl kmb_Latn kon_Latn kor_Hang kmr_Latn lao_Laoo
    lvs_Latn lij_Latn lim_Latn lin_Latn lit_Latn lmo_Latn ltg_Latn ltz_Latn lua_Latn lug_Latn
    luo_Latn lus_Latn mag_Deva mai_Deva mal_Mlym mar_Deva min_Latn mkd_Cyrl plt_Latn mlt_Latn
    mni_Beng khk_Cyrl mos_Latn mri_Latn zsm_Latn mya_Mymr nld_Latn nno_Latn nob_Latn npi_Deva
    nso_Latn nus_Latn nya_Latn oci_Latn gaz_Latn ory_Orya pag_Latn pan_Guru pap_Latn pol_Latn
    por_Latn prs_Arab pbt_Arab quy_Latn ron_Latn run_Latn rus_Cyrl sag_Latn san_Deva sat_Beng
    scn_Latn shn_Mymr sin_Sinh slk_Latn slv_Latn smo_Latn sna_Latn snd_Arab som_Latn sot_Latn
    spa_Latn als_Latn srd_Latn srp_Cyrl ssw_Latn sun_Latn swe_Latn swh_Latn szl_Latn tam_Taml
    tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi taq_Latn taq_Tfng tpi_Latn tsn_Latn
    tso_Latn tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab ukr_Cyrl umb_Latn urd_Arab
    uzn_Latn vec_Latn vie_Latn war_Latn wol_Latn xho_Latn ydd_Hebr yor_Latn yue_Hant zho_Hans
    zho_Hant zul_Latn
"""
FLORES_200: tuple[str, ...] = tuple(_FLORES.split())
# LibreTranslate's legacy codes (libretranslate/language.py): Brazilian Portuguese, Traditional
# Chinese; and its spelling of Simplified Chinese
ALIASES = {"pb": "pt-BR", "zt": "zh-Hant", "zh-hans": "zh-Hans"}
# scripts CLDR and FLORES-200 name differently for one writing system
_SAME_SCRIPT = {"Kore": "Hang"}
_SHAPE = re.compile(r"([a-zA-Z]{2,3})(?:[-_]([a-zA-Z]{4}))?(?:[-_]([a-zA-Z]{2}|[0-9]{3}))?")


@dataclass(frozen=True)
class Language:
    key: str  # what models are asked in: `pt`, `zh-Hant`, `fuv`, `sr-Latn`
    base: str  # ISO 639-1 where there is one, else ISO 639-3
    script: str  # ISO 15924: the tag's, its region's, or the language's usual one


def language(code: str) -> Language | None:
    """The language `code` names, or None: not of the accepted shape (a language, a script, a
    region), not a known language, or a region where it is not spoken."""
    found = _SHAPE.fullmatch(ALIASES.get(code.lower(), code))
    if found is None:
        return None
    return _read(*(part.lower() if part else "" for part in found.groups()))


@cache
def _read(base: str, script: str, region: str) -> Language | None:
    try:
        parsed = langcodes.Language.get(base)
    except (ValueError, LookupError):
        return None
    if not parsed.is_valid() or parsed.language is None:
        return None
    name = parsed.language  # normalised: `fra` -> `fr`, `iw` -> `he`, `prs` -> `fa` (AF)
    script = script or (parsed.script or "").lower()
    region = region or (parsed.territory or "").lower()
    if region and f"{name}-{region.upper()}" not in LANGUAGE_SPEAKING_POPULATION:
        return None
    usual = usual_script(name)
    written = script.title() if script else _region_script(name, region.upper()) or usual
    written = _SAME_SCRIPT.get(written, written)
    if written not in data_dicts.ALL_SCRIPTS:
        return None
    return Language(name if written == usual else f"{name}-{written}", name, written)


@cache
def usual_script(base: str) -> str:
    """The script a language is usually written in (CLDR's likely subtags)."""
    script = langcodes.Language.get(base).maximize().script or ""
    return _SAME_SCRIPT.get(script, script)


def _region_script(base: str, region: str) -> str:
    likely = data_dicts.LIKELY_SUBTAGS.get(f"{base}-{region}", "") if region else ""
    parts = [part for part in likely.split("-") if len(part) == 4]
    return parts[0] if parts else ""


@cache
def display_name(code: str) -> str:
    """The language's English name (`bas` -> `Basaa`, `pt-BR` -> `Portuguese (Brazil)`), or ""
    when `code` names none: for error messages that a person reads."""
    read = language(code)
    if read is None:
        return ""
    try:
        return str(langcodes.Language.get(ALIASES.get(code.lower(), code)).display_name())
    except (ValueError, LookupError):
        return ""


def named(code: str) -> str:
    """`code` quoted, with its language's name where known: `'bas' (Basaa)`."""
    name = display_name(code)
    return f"{code!r} ({name})" if name else repr(code)


def key_of(code: str) -> str:
    """The key of a code this table reads (a configured code: NLLB_CODES', DETECT_LANGUAGES')."""
    read = language(code)
    if read is None:
        raise ValueError(f"{code!r} is not a language code")
    return read.key


@cache
def _nllb_by_key() -> dict[str, str]:
    """Key -> FLORES-200 code: NLLB_CODES' choices (keyed as the table reads them: `tl` is
    `fil`), then every other FLORES-200 code under its own key (`zh-Hant`, `fuv`, `acm`)."""
    found = {key_of(iso): code for iso, code in NLLB_CODES.items()}
    for code in FLORES_200:
        alpha3, script = code.split("_")
        read = language(f"{alpha3}-{script}")
        if read is not None:
            found.setdefault(read.key, code)
    return found


def nllb_code(key: str) -> str | None:
    """NLLB-200's code for a language key, or None: NLLB does not write it (in that script)."""
    found = _nllb_by_key().get(key)
    if found is not None:
        return found
    read = language(key)
    if read is None:
        return None
    code = f"{langcodes.Language.get(read.base).to_alpha3()}_{read.script}"
    return code if code in FLORES_200 else None


def nllb_keys() -> frozenset[str]:
    """The keys NLLB-200 writes."""
    return frozenset(_nllb_by_key())
