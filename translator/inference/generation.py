"""Bounded generation: a token budget from the source length, and a stop for rows that loop.

The budget of a generate() call is `ceil(ratio x longest source piece) + 8` tokens, kept between
a floor and a ceiling (GENERATION_RATIO, GENERATION_FLOOR, MAX_NEW_TOKENS): a batch of short
chat lines never decodes for 256 steps because the model default says so. A row whose tail
repeats the same block of tokens REPETITION_LIMIT times (and at least 8 tokens in all) is
stopped there, and the loop is collapsed to one copy of the block: one looping message no longer
keeps the whole batch decoding to the budget."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria

MAX_BLOCK = 16  # the longest repeated block looked for, in tokens
MIN_LOOP = 8  # a loop spans at least this many tokens ("!!!!" alone is not one)


@dataclass(frozen=True)
class Budget:
    ratio: float
    floor: int
    ceiling: int

    def tokens(self, longest_source: int) -> int:
        wanted = math.ceil(self.ratio * longest_source) + 8
        return max(self.floor, min(self.ceiling, wanted))


def loop_length(row: list[int], repeats: int) -> int:
    """How many tokens at the end of `row` are extra copies of a repeated block (0: none):
    the block repeated at least `repeats` times, spanning at least MIN_LOOP tokens."""
    if repeats < 2:
        return 0
    for size in range(1, MAX_BLOCK + 1):
        copies = max(repeats, math.ceil(MIN_LOOP / size))
        if copies * size > len(row):
            break
        block = row[-size:]
        n = 1
        while (n + 1) * size <= len(row) and row[-(n + 1) * size : -n * size] == block:
            n += 1
        if n >= copies:
            return (n - 1) * size
    return 0


class RepetitionStop(StoppingCriteria):  # type: ignore[misc]
    """A transformers StoppingCriteria (per row): True for the rows whose tail loops."""

    def __init__(self, repeats: int, prompt_length: int = 1, minimum: int = 0) -> None:
        super().__init__()
        self.repeats = repeats
        self.prompt_length = prompt_length  # decoder start (and forced language) tokens
        self.minimum = minimum  # the model's own min_new_tokens: no stop until past it
        self.stopped: set[int] = set()

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        generated = input_ids.shape[1] - self.prompt_length
        if generated < MIN_LOOP or generated <= self.minimum:
            return done  # type: ignore[return-value]
        tails = input_ids[:, -MAX_BLOCK * max(self.repeats, MIN_LOOP) :].tolist()
        for i, tail in enumerate(tails):
            if i not in self.stopped and loop_length(tail, self.repeats):
                self.stopped.add(i)
                done[i] = True
        return done  # type: ignore[return-value]


def collapse(row: list[int], repeats: int, pad: int | None) -> tuple[list[int], bool]:
    """`row` without its padding, a looping tail collapsed to one copy; and whether it looped."""
    while row and pad is not None and row[-1] == pad:
        row = row[:-1]
    extra = loop_length(row, repeats)
    return (row[: len(row) - extra], True) if extra else (row, False)
