"""Beam search over any `Decoder` (PyTorch or ONNX Runtime), the algorithm of transformers' `generate`
(num_beams, length_penalty, early_stopping True / False / "never"), in numpy.

Each prompt runs as `num_beams` rows of one batch. Every step keeps the 2 * num_beams best continuations
of all beams by accumulated log-probability; those ending in eos become finished hypotheses (scored by
sum of log-probs / generated_length ** length_penalty, only from the top num_beams), the best num_beams
unfinished ones run on, and the decoder's past (KV cache or recurrent states S, z) is reordered to follow
the beams they came from (`Decoder.reorder`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .beam_core import BeamRun
from .decoders import Decoder
from .loop import check_prompts, left_pad
from .options import GenerationConfig, GenerationError


@dataclasses.dataclass(frozen=True)
class BeamOptions:
    num_beams: int = 4
    max_new_tokens: int = 32
    length_penalty: float = 1.0
    early_stopping: bool | str = False  # True, False or "never", as transformers

    def __post_init__(self) -> None:
        if not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise GenerationError(f"num_beams={self.num_beams!r} is not allowed; it must be an integer >= 1")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise GenerationError(f"max_new_tokens={self.max_new_tokens!r} is not allowed; it must be an integer >= 1")
        if not np.isfinite(self.length_penalty):
            raise GenerationError(f"length_penalty={self.length_penalty!r} is not allowed; it must be a finite number")
        if self.early_stopping not in (True, False, "never"):
            raise GenerationError(f"early_stopping={self.early_stopping!r} is not allowed; use true, false or never")


def beam_search(decoder: Decoder, prompts: Sequence[Sequence[int]], options: BeamOptions,
                gen: GenerationConfig = GenerationConfig()) -> list[list[int]]:
    """The best hypothesis of each prompt: its new tokens, up to and including eos."""
    config = decoder.config
    gen.check(config.vocab_size)
    if gen.bos_token_id is not None:
        prompts = [list(p) if len(p) else [gen.bos_token_id] for p in prompts]
    check_prompts(prompts, config.vocab_size, options.max_new_tokens, decoder)
    ids, mask = left_pad([p for p in prompts for _ in range(options.num_beams)], gen.pad)
    run = BeamRun(options, gen.eos_token_id, len(prompts))
    logits = decoder.prefill(ids, mask)
    while True:
        done, rows, tokens = run.advance(logits)
        if done:
            return run.best()
        decoder.reorder(rows)
        logits = decoder.step(tokens)
