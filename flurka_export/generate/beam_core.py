"""The beam-search step of transformers' `generate` (num_beams, length_penalty, early_stopping True / False /
"never") in numpy, with no other import: `generate.beam` drives it over a Decoder, and the Triton generate model
(serve/generate_decoders.py, which finds this file beside it) over the streams in flight.

`select` keeps the 2 * num_beams best continuations of all beams by accumulated log-probability; those ending in
eos become finished hypotheses (scored by sum of log-probs / generated_length ** length_penalty, only from the top
num_beams), the best num_beams unfinished ones run on. `opts` is anything with num_beams, max_new_tokens,
length_penalty and early_stopping.
"""

import dataclasses

import numpy as np

NEG = -1.0e9  # transformers' "impossible" score


@dataclasses.dataclass
class BeamState:
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
    def start(cls, b: int, k: int, steps: int) -> "BeamState":
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


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def select(st: BeamState, logp: np.ndarray, t: int, opts, eos: int | None, last: bool) -> bool:
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


def still_improvable(st: BeamState, generated: int, opts) -> None:
    """transformers' early-stop heuristic: can a running beam still beat the worst finished one?"""
    length = opts.max_new_tokens if (opts.early_stopping == "never" and opts.length_penalty > 0) else generated
    best_running = st.running_scores[:, :1] / float(length ** opts.length_penalty)
    worst_finished = np.where(st.finished, st.scores.min(1, keepdims=True), NEG)
    st.improvable = st.improvable & (best_running > worst_finished).any(-1, keepdims=True)




class BeamRun:
    """One beam search, step by step, for `b` prompts of `opts.num_beams` rows each: `advance(logits)` with the
    logits [b * K, V] of every row returns whether the search is over and, if not, the row each beam continues
    from (reorder the states so) and the token it feeds next."""

    def __init__(self, opts, eos: "int | None", b: int = 1) -> None:
        self.opts, self.eos, self.t = opts, eos, 0
        self.st = BeamState.start(b, opts.num_beams, opts.max_new_tokens)

    def advance(self, logits: np.ndarray) -> "tuple[bool, np.ndarray | None, np.ndarray | None]":
        st, opts, t = self.st, self.opts, self.t
        all_stopped = select(st, log_softmax(logits), t, opts, self.eos, last=t + 1 == opts.max_new_tokens)
        still_improvable(st, t + 1, opts)
        exists_open = not (st.finished.all() and opts.early_stopping is True)
        self.t += 1
        if all_stopped or not st.improvable.any() or not exists_open:
            return True, None, None
        return False, st.running_src[:, :, t].reshape(-1), st.running_seq[:, :, t].reshape(-1)

    def best(self) -> "list[list[int]]":
        """Each prompt's best hypothesis: its new tokens, up to and including eos."""
        out = []
        for i in range(self.st.seq.shape[0]):
            n = int((self.st.src[i, 0] >= 0).sum())
            out.append([int(x) for x in self.st.seq[i, 0, :n]])
        return out
