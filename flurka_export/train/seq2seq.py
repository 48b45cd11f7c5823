"""Translation data and scoring shared by PyTorch and ONNX Runtime: a shared byte-level BPE over both languages,
pairs as (source + eos) -> (start, target) with labels (target + eos), length-bucketed batches, and corpus BLEU
(sacrebleu) of any runtime's greedy or beam translations.

One special token, end-of-text (id 0), is eos, pad and decoder_start: the decoder starts every target from it,
as Marian starts from pad. Padded label positions are -100, which the loss and perplexity ignore.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..generate import BeamOptions, Decoder, GenerationConfig, SamplingOptions, beam_search, generate
from .lm import EOS, train_tokenizer

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # input_ids, attention_mask, decoder_input_ids, labels


@dataclasses.dataclass
class Encoded:
    """Token ids of each pair: source ends with eos; target without start or eos."""

    source: list[list[int]]
    target: list[list[int]]

    def __len__(self) -> int:
        return len(self.source)


def shared_tokenizer(sources: Sequence[str], targets: Sequence[str], vocab_size: int) -> Any:
    """One byte-level BPE for both languages (the model shares its word embeddings between encoder and decoder),
    which ends every encoded text with eos as the model's sources end (`with_source_eos`)."""
    return with_source_eos(train_tokenizer([*sources, *targets], vocab_size))


def with_source_eos(tokenizer: Any) -> Any:
    """The tokenizer with a post-processor that appends eos (as T5's and Marian's do), so a source typed at
    `flurka-export generate --prompt` or sent to the server as text_input ends as the training sources do.
    `encode` here adds no special token itself and appends eos explicitly."""
    from tokenizers.processors import TemplateProcessing

    eos = tokenizer.token_to_id(EOS)
    tokenizer.post_processor = TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, eos)])
    return tokenizer


def generation_config(tokenizer: Any) -> GenerationConfig:
    eos = tokenizer.token_to_id(EOS)
    return GenerationConfig(eos_token_id=eos, pad_token_id=eos, decoder_start_token_id=eos)


def encode(tokenizer: Any, sources: Sequence[str], targets: Sequence[str], max_source: int,
           max_target: int) -> Encoded:
    """Ids of each pair, cut to fit: the source (with eos) to `max_source`, the target to `max_target` - 1
    tokens (the start token takes the decoder's first position, eos its last label)."""
    eos = tokenizer.token_to_id(EOS)
    src = [e.ids[:max_source - 1] + [eos] for e in tokenizer.encode_batch(list(sources), add_special_tokens=False)]
    tgt = [e.ids[:max_target - 1] for e in tokenizer.encode_batch(list(targets), add_special_tokens=False)]
    return Encoded(src, tgt)


def _pad(rows: Sequence[Sequence[int]], value: int) -> np.ndarray:
    out = np.full((len(rows), max(len(r) for r in rows)), value, np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def make_batch(data: Encoded, rows: Sequence[int], eos: int) -> Batch:
    """Right-padded source and mask, decoder input (start, target) and labels (target, eos; pad -100)."""
    src = [data.source[i] for i in rows]
    tgt = [data.target[i] for i in rows]
    ids = _pad(src, eos)
    mask = _pad([[1] * len(s) for s in src], 0)
    dec = _pad([[eos, *t] for t in tgt], eos)
    labels = _pad([[*t, eos] for t in tgt], -100)
    return tuple(torch.from_numpy(a) for a in (ids, mask, dec, labels))  # type: ignore[return-value]


def token_batches(data: Encoded, max_tokens: int, seed: int, epoch: int, eos: int) -> Iterator[Batch]:
    """One shuffled pass: pairs sorted by length within shuffled chunks of 100 batches' worth, cut into batches of
    at most `max_tokens` padded source + target tokens, in a shuffled order. The same (seed, epoch), the same
    batches."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(data))
    size = lambda i: max(len(data.source[i]), len(data.target[i]) + 1)  # noqa: E731
    batches: list[list[int]] = []
    chunk = max(1, 100 * max_tokens // 40)
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=size)
        rows: list[int] = []
        longest = 0
        for i in part:
            longest2 = max(longest, size(i))
            if rows and longest2 * (len(rows) + 1) * 2 > max_tokens:
                batches.append(rows)
                rows, longest2 = [], size(i)
            rows.append(int(i))
            longest = longest2
        if rows:
            batches.append(rows)
    for b in rng.permutation(len(batches)):
        yield make_batch(data, batches[b], eos)


def eval_batches(data: Encoded, batch_size: int, eos: int) -> Iterator[Batch]:
    for i in range(0, len(data), batch_size):
        yield make_batch(data, range(i, min(i + batch_size, len(data))), eos)


def translate(decoder: Decoder, tokenizer: Any, sources: Sequence[Sequence[int]], gen: GenerationConfig,
              max_new_tokens: int, num_beams: int = 1, batch_size: int = 32,
              progress: Callable[[int], Any] | None = None) -> list[str]:
    """Greedy (num_beams 1) or beam translations of source ids, as text, in batches of similar length."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[str] = [""] * len(sources)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        prompts = [list(sources[i]) for i in rows]
        if num_beams == 1:
            ids = generate(decoder, prompts, SamplingOptions(max_new_tokens=max_new_tokens), gen)
        else:
            ids = beam_search(decoder, prompts, BeamOptions(num_beams=num_beams, max_new_tokens=max_new_tokens), gen)
        for i, row in zip(rows, ids, strict=True):
            out[i] = tokenizer.decode([t for t in row if t != gen.eos_token_id]).strip()
        if progress:
            progress(len(rows))
    return out


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu's defaults: 13a tokenization, exponential smoothing off)."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)
