"""The golden chat sets (tests/golden) on the REAL Firefox Translations en<->pt models, in one
process (text plan + engine, no NATS): chrF against the references and of the round trip, how
many number-bearing lines keep every number with and without `text/numbers.py`, and the engine's
speed alone on the sets' lines (1 thread and 2).

    python -m bench.golden
"""

from __future__ import annotations

import re
import time

from tests import golden
from translator.contracts.settings import TranslatorSettings
from translator.inference import engine, firefox
from translator.inference.models import ModelRegistry
from translator.inference.routing import route
from translator.text import numbers, plan

_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")


def _translate(
    loaded: object, texts: list[str], source: str, target: str, restore: bool
) -> list[str]:
    out = []
    for text in texts:
        built = plan.build(text, source)
        pieces = engine.translate(loaded, built.pieces, source, target)  # type: ignore[arg-type]
        out.append(
            built.assemble(
                [
                    numbers.restore(t, p.text) if restore else p.text
                    for t, p in zip(built.pieces, pieces, strict=True)
                ]
            )
        )
    return out


def _kept(source: str, output: str) -> bool:
    return all(output.count(n) >= source.count(n) for n in _NUMBER.findall(source))


def main() -> None:
    settings = TranslatorSettings(models_offline=True, bundled_models=True)
    registry = ModelRegistry(settings)
    for source, target in (("en", "pt"), ("pt", "en")):
        there = route(registry, settings, "basic", source, target).loaded
        back = route(registry, settings, "basic", target, source).loaded
        lines = golden.read(source)
        outputs = _translate(there, [line.source for line in lines], source, target, True)
        raw = _translate(there, [line.source for line in lines], source, target, False)
        returned = _translate(back, outputs, target, source, True)
        refs = [
            (line.reference, out)
            for line, out in zip(lines, outputs, strict=True)
            if line.reference
        ]
        numbered = [
            (line.source, r, o)
            for line, r, o in zip(lines, raw, outputs, strict=True)
            if _NUMBER.search(line.source)
        ]
        print(
            f"{source}->{target}: {len(lines)} lines; chrF vs {len(refs)} references "
            f"{golden.chrf([o for _, o in refs], [r for r, _ in refs])}, round trip "
            f"{golden.chrf(returned, [line.source for line in lines])}; numbers verbatim in "
            f"{sum(_kept(s, r) for s, r, _ in numbered)}/{len(numbered)} lines raw, "
            f"{sum(_kept(s, o) for s, _, o in numbered)}/{len(numbered)} restored"
        )
        pieces = [p for line in lines for p in plan.build(line.source, source).pieces]
        where = firefox.directory(settings.pair_model(source, target) or "", settings.models_path)
        assert where is not None
        for threads in (1, 2):
            alone = firefox.Engine(where, threads)
            rates = []
            for _ in range(3):
                started = time.perf_counter()
                alone.translate(pieces)
                rates.append(len(pieces) / (time.perf_counter() - started))
            rates.sort()
            print(
                f"  engine alone, {threads} thread(s): {rates[1]:.0f} pieces/s "
                f"(median of 3, {len(pieces)} pieces)"
            )


if __name__ == "__main__":
    main()
