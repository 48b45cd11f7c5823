"""The decoding loop shared by every runtime and by `generate`, verify-free and streaming: left-pad the
prompts, prefill once, then one step per new token until every row has produced eos or max_new_tokens."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence

import numpy as np

from .decoders import Decoder
from .options import GenerationConfig, GenerationError, SamplingOptions
from .sampling import next_tokens


@dataclasses.dataclass
class Step:
    """The tokens chosen at one step: one per row; `done[i]` once row i has ended (its token is then pad)."""

    index: int
    tokens: np.ndarray  # [B] int64
    done: np.ndarray  # [B] bool, after this step


@dataclasses.dataclass
class Timing:
    prefill_ms: float = 0.0
    step_ms: list[float] = dataclasses.field(default_factory=list)

    @property
    def ms_per_token(self) -> float:
        return float(np.mean(self.step_ms)) if self.step_ms else 0.0


def check_prompts(prompts: Sequence[Sequence[int]], vocab_size: int, max_new_tokens: int, decoder: Decoder) -> None:
    if not prompts:
        raise GenerationError("no prompt given")
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise GenerationError(f"prompt {i} is empty; give at least one token (the checkpoint has no bos_token_id)")
        bad = [t for t in p if not 0 <= int(t) < vocab_size]
        if bad:
            raise GenerationError(f"prompt {i} has token id {bad[0]} outside the vocabulary (0..{vocab_size - 1})")
        why = decoder.length_error(len(p), max_new_tokens)
        if why:
            raise GenerationError(f"prompt {i} has {why}")


def left_pad(prompts: Sequence[Sequence[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """input_ids and attention_mask [B, max len], prompts right-aligned (decoding appends on the right)."""
    n = max(len(p) for p in prompts)
    ids = np.full((len(prompts), n), pad, np.int64)
    mask = np.zeros((len(prompts), n), np.int64)
    for i, p in enumerate(prompts):
        if len(p):
            ids[i, n - len(p):] = p
            mask[i, n - len(p):] = 1
    return ids, mask


def generate_steps(decoder: Decoder, prompts: Sequence[Sequence[int]], options: SamplingOptions,
                   gen: GenerationConfig = GenerationConfig(), timing: Timing | None = None) -> Iterator[Step]:
    """Yield each step's tokens as soon as they are chosen (a Python iterator: stream or collect)."""
    config = decoder.config
    gen.check(config.vocab_size)
    if gen.bos_token_id is not None:
        prompts = [list(p) if len(p) else [gen.bos_token_id] for p in prompts]
    check_prompts(prompts, config.vocab_size, options.max_new_tokens, decoder)
    timing = timing if timing is not None else Timing()
    rng = np.random.default_rng(options.seed)
    ids, mask = left_pad(prompts, gen.pad)
    t0 = time.perf_counter()
    logits = decoder.prefill(ids, mask)
    timing.prefill_ms = (time.perf_counter() - t0) * 1e3
    done = np.zeros(len(prompts), bool)
    for index in range(options.max_new_tokens):
        tokens = np.where(done, gen.pad, next_tokens(logits, options, rng))
        if gen.eos_token_id is not None:
            done = done | (tokens == gen.eos_token_id)
        yield Step(index, tokens, done.copy())
        if done.all() or index + 1 == options.max_new_tokens:
            return
        t0 = time.perf_counter()
        logits = decoder.step(tokens)
        timing.step_ms.append((time.perf_counter() - t0) * 1e3)


def generate(decoder: Decoder, prompts: Sequence[Sequence[int]], options: SamplingOptions,
             gen: GenerationConfig = GenerationConfig()) -> list[list[int]]:
    """The new tokens of each row, up to and including its eos."""
    rows: list[list[int]] = [[] for _ in prompts]
    ended = np.zeros(len(prompts), bool)
    for step in generate_steps(decoder, prompts, options, gen):
        for i, t in enumerate(step.tokens):
            if not ended[i]:
                rows[i].append(int(t))
        ended = step.done
    return rows
