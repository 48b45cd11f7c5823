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

from .decoders import Decoder
from .loop import check_prompts, left_pad
from .options import GenerationConfig, GenerationError

NEG = -1.0e9  # transformers' "impossible" score


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


@dataclasses.dataclass
class _State:
    """transformers' beam-search state, per prompt b and beam k; `seq` holds the generated tokens only."""

    running_seq: np.ndarray  # [B, K, L]
    running_scores: np.ndarray  # [B, K]
    running_src: np.ndarray  # [B, K, L]: the flat row each generated token came from (-1: not yet)
    seq: np.ndarray  # [B, K, L]: finished hypotheses
    scores: np.ndarray  # [B, K]
    src: np.ndarray  # [B, K, L]
    finished: np.ndarray  # [B, K]
    improvable: np.ndarray  # [B, 1]

    @classmethod
    def start(cls, b: int, k: int, steps: int) -> _State:
        running_scores = np.full((b, k), NEG)
        running_scores[:, 0] = 0.0
        seq = np.zeros((b, k, steps), np.int64)
        src = np.full((b, k, steps), -1, np.int64)
        return cls(seq.copy(), running_scores, src.copy(), seq, np.full((b, k), NEG), src,
                   np.zeros((b, k), bool), np.ones((b, 1), bool))


def _gather(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x[b, idx[b, j]] along axis 1."""
    return np.take_along_axis(x, idx.reshape(*idx.shape, *([1] * (x.ndim - 2))), axis=1)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest per row, best first (ties: the lower index, as torch.topk on CPU)."""
    return np.argsort(-scores, axis=-1, kind="stable")[:, :k]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _select(st: _State, logp: np.ndarray, t: int, opts: BeamOptions, eos: int | None, last: bool) -> bool:
    """One step t (0-based) of generated tokens: choose continuations, finish hypotheses, keep running beams.
    Returns whether every candidate stopped (no valid continuation)."""
    b, k = st.running_scores.shape
    v = logp.shape[-1]
    acc = (logp.reshape(b, k, v) + st.running_scores[:, :, None]).reshape(b, k * v)
    keep = 2 * k if eos is not None else k
    top = _top(acc, keep)
    top_scores = np.take_along_axis(acc, top, axis=1)
    beam, token = top // v, top % v
    cand_seq = _gather(st.running_seq, beam).copy()
    cand_seq[:, :, t] = token
    cand_src = _gather(st.running_src, beam).copy()
    cand_src[:, :, t] = beam + np.arange(b)[:, None] * k
    hits = (token == eos) if eos is not None else np.zeros_like(token, bool)
    if last:  # the length limit stops every candidate
        hits = np.ones_like(hits)
    # running beams for the next step: the best k that did not stop
    run = _top(top_scores + hits * NEG, k)
    st.running_seq, st.running_scores, st.running_src = (_gather(cand_seq, run), _gather(top_scores + hits * NEG, run),
                                                         _gather(cand_src, run))
    # finished hypotheses: only the top k candidates may finish
    just = hits & (np.arange(keep) < k)[None, :]
    fin = top_scores / float((t + 1) ** opts.length_penalty)
    full = st.finished.all(-1, keepdims=True) & (opts.early_stopping is True)
    fin = fin + full * NEG + (~st.improvable) * NEG + (~just) * NEG
    merged = np.concatenate([st.scores, fin], axis=1)
    best = _top(merged, k)
    st.seq = _gather(np.concatenate([st.seq, cand_seq], axis=1), best)
    st.src = _gather(np.concatenate([st.src, cand_src], axis=1), best)
    st.finished = _gather(np.concatenate([st.finished, just], axis=1), best)
    st.scores = _gather(merged, best)
    return bool(hits.all())


def _still_improvable(st: _State, generated: int, opts: BeamOptions) -> None:
    """transformers' early-stop heuristic: can a running beam still beat the worst finished one?"""
    length = opts.max_new_tokens if (opts.early_stopping == "never" and opts.length_penalty > 0) else generated
    best_running = st.running_scores[:, :1] / float(length ** opts.length_penalty)
    worst_finished = np.where(st.finished, st.scores.min(1, keepdims=True), NEG)
    st.improvable = st.improvable & (best_running > worst_finished).any(-1, keepdims=True)


def beam_search(decoder: Decoder, prompts: Sequence[Sequence[int]], options: BeamOptions,
                gen: GenerationConfig = GenerationConfig()) -> list[list[int]]:
    """The best hypothesis of each prompt: its new tokens, up to and including eos."""
    config = decoder.config
    gen.check(config.vocab_size)
    if gen.bos_token_id is not None:
        prompts = [list(p) if len(p) else [gen.bos_token_id] for p in prompts]
    check_prompts(prompts, config.vocab_size, options.max_new_tokens, decoder)
    k, b, steps = options.num_beams, len(prompts), options.max_new_tokens
    ids, mask = left_pad([p for p in prompts for _ in range(k)], gen.pad)
    logits = decoder.prefill(ids, mask)
    st = _State.start(b, k, steps)
    for t in range(steps):
        last = t + 1 == steps  # the length limit
        all_stopped = _select(st, _log_softmax(logits), t, options, gen.eos_token_id, last)
        _still_improvable(st, t + 1, options)
        exists_open = not (st.finished.all() and options.early_stopping is True)
        if all_stopped or not st.improvable.any() or not exists_open:
            break
        decoder.reorder(st.running_src[:, :, t].reshape(-1))
        logits = decoder.step(st.running_seq[:, :, t].reshape(-1))
    out = []
    for i in range(b):
        n = int((st.src[i, 0] >= 0).sum())
        out.append([int(x) for x in st.seq[i, 0, :n]])
    return out
