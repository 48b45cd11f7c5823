"""Language-model data and evaluation shared by PyTorch and ONNX Runtime: a byte-level BPE, verses packed into
one token stream (end-of-text between them), fixed windows over it, and perplexity from any runtime's logits.

Perplexity is computed here, in numpy (float64 log-softmax), from the logits [B, T, V] each runtime returns
for the same windows, so the two runtimes differ only by their logits. ONNX Runtime runs the exported model's
prefill: input_ids, attention_mask (ones), position_ids (0..T-1) and zero past states `past_key_values.{i}.*`
(an empty KV cache for softmax, zero recurrent states for kernel attention), as `OrtDecoder` feeds them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models import FlurkaConfig, lm_io

EOS = "<|endoftext|>"  # GPT-2's end-of-text: eos between verses, and bos and pad when generating
LogitsFn = Callable[[np.ndarray], np.ndarray]  # input_ids [B, T] int64 -> logits [B, T, V]


def train_tokenizer(texts: Sequence[str], vocab_size: int, eos: str = EOS) -> Any:
    """A byte-level BPE (GPT-2's pre-tokenizer, no prefix space) trained on `texts`; `eos` is token 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[eos], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def gpt2_init(model: torch.nn.Module, std: float = 0.02) -> torch.nn.Module:
    """GPT-2's initialisation: every Linear and Embedding weight N(0, std), biases 0 (LayerNorms kept). With tied
    embeddings, N(0, 1) word embeddings would start the logits at a std of sqrt(hidden_size)."""
    gen = torch.Generator().manual_seed(getattr(getattr(model, "config", None), "seed", 0))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear | torch.nn.Embedding):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.zero_()
    return model


def pack(tokenizer: Any, texts: Sequence[str], eos_id: int) -> np.ndarray:
    """One int64 stream: eos, text 0, eos, text 1, eos, ... (each text starts after an eos, as a prompt does)."""
    ids = [eos_id]
    for enc in tokenizer.encode_batch(list(texts)):
        ids.extend(enc.ids)
        ids.append(eos_id)
    return np.asarray(ids, np.int64)


def windows(stream: np.ndarray, seq_len: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows from `offset`: inputs [N, seq_len] and their next tokens [N, seq_len]; every
    token after the first (and before the last incomplete window) is predicted exactly once."""
    n = (len(stream) - 1 - offset) // seq_len
    idx = offset + np.arange(n)[:, None] * seq_len + np.arange(seq_len)[None, :]
    return stream[idx], stream[idx + 1]


def train_batches(stream: np.ndarray, seq_len: int, batch_size: int, seed: int, epoch: int
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over the packed training stream: windows from an offset and in an order drawn from
    (seed, epoch), so every epoch cuts the text differently and a run is reproducible."""
    rng = np.random.default_rng([seed, epoch])
    x, y = windows(stream, seq_len, offset=int(rng.integers(seq_len)))
    order = rng.permutation(len(x))
    for i in range(0, len(order) - batch_size + 1, batch_size):
        rows = order[i:i + batch_size]
        yield torch.from_numpy(x[rows]), torch.from_numpy(y[rows])


def eval_windows(stream: np.ndarray, seq_len: int, max_windows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The held-out windows (offset 0, in order), the first `max_windows` of them if given."""
    x, y = windows(stream, seq_len)
    return x[:max_windows], y[:max_windows]


def eval_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for i in range(0, len(x), batch_size):
        yield torch.from_numpy(x[i:i + batch_size]), torch.from_numpy(y[i:i + batch_size])


def perplexity(logits_of: LogitsFn, x: np.ndarray, y: np.ndarray, batch_size: int = 16) -> float:
    """exp(mean negative log-likelihood of y given x) with the logits of any runtime (numpy, float64)."""
    nll, count = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = logits_of(x[i:i + batch_size]).astype(np.float64)
        top = logits.max(-1, keepdims=True)
        logz = np.log(np.exp(logits - top).sum(-1)) + top[..., 0]
        target = np.take_along_axis(logits, y[i:i + batch_size][..., None], axis=-1)[..., 0]
        nll += float((logz - target).sum())
        count += target.size
    return math.exp(nll / max(count, 1))


def torch_logits(model: torch.nn.Module) -> LogitsFn:
    model.eval()

    def run(ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(ids))).float().numpy()

    return run


def ort_logits(path: str | os.PathLike, config: FlurkaConfig) -> LogitsFn:
    """Prefill of the exported model with zero past states: logits [B, T, V] as `torch_logits` gives them."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(Path(path)), opts, providers=["CPUExecutionProvider"])
    half = any(i.type == "tensor(float16)" for i in session.get_inputs())

    def run(ids: np.ndarray) -> np.ndarray:
        past = lm_io.zero_past(config, ids.shape[0], np.float16 if half else np.float32)
        feed = lm_io.step_feed(ids, np.ones(ids.shape, np.int64), past)
        return session.run([lm_io.LOGITS], feed)[0].astype(np.float32)

    return run
