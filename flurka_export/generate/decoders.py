"""One decoding interface over the runtimes: `prefill(ids, mask)` then `step(tokens)`, each returning the last
position's logits [B, V] as numpy; the decoder keeps the past (KV cache or recurrent states) between calls.

PyTorch runs the checkpoint's model; ONNX Runtime runs the exported file, feeding every `present.*` output
back as the `past_key_values.*` input of the same name (optimum's and onnxruntime-genai's convention).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..models import FlurkaConfig, lm_io
from ..models.lm import positions_from_mask


class Decoder(Protocol):
    config: FlurkaConfig
    runtime: str

    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...

    def step(self, tokens: np.ndarray) -> np.ndarray: ...

    def reorder(self, rows: np.ndarray) -> None:
        """Make row i of the batch continue from row rows[i]'s past (beam search)."""

    def length_error(self, prompt_len: int, max_new_tokens: int) -> str | None:
        """What is wrong with a prompt of this length and this many new tokens (after "prompt i has "), or None."""


class ContextLimit:
    """Decoder-only models: prompt and new tokens share the max_seq_len positions."""

    config: FlurkaConfig

    def length_error(self, prompt_len: int, max_new_tokens: int) -> str | None:
        context = self.config.max_seq_len
        if prompt_len + max_new_tokens <= context:
            return None
        return (f"{prompt_len} tokens; with max_new_tokens={max_new_tokens} the context would reach "
                f"{prompt_len + max_new_tokens} > max_seq_len={context}, the model's context limit (use at most "
                f"--max-new-tokens {max(0, context - prompt_len)})")


class TorchDecoder(ContextLimit):
    runtime = "torch"

    def __init__(self, model: Any) -> None:
        self.model = model.eval()
        self.config: FlurkaConfig = model.config
        self.past: Any = None
        self.mask: Any = None

    def _run(self, ids: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits, self.past = self.model(ids, self.mask, past_key_values=self.past, use_cache=True)
        return logits[:, -1].float().numpy()

    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        self.past = None
        self.mask = torch.from_numpy(np.ascontiguousarray(attention_mask, dtype=np.int64))
        return self._run(torch.from_numpy(np.ascontiguousarray(input_ids, dtype=np.int64)))

    def step(self, tokens: np.ndarray) -> np.ndarray:
        import torch

        self.mask = torch.cat([self.mask, torch.ones(self.mask.shape[0], 1, dtype=torch.int64)], dim=1)
        return self._run(torch.from_numpy(np.asarray(tokens, dtype=np.int64)[:, None]))

    def reorder(self, rows: np.ndarray) -> None:
        import torch

        idx = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        self.past = [tuple(t.index_select(0, idx) for t in layer) for layer in self.past]
        self.mask = self.mask.index_select(0, idx)


class OrtDecoder(ContextLimit):
    runtime = "ort"

    def __init__(self, path: str | os.PathLike, config: FlurkaConfig, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(Path(path)), opts, providers=providers or ["CPUExecutionProvider"])
        self.config = config
        types = {i.type for i in self.session.get_inputs() if i.name.startswith(lm_io.PAST_PREFIX)}
        self.float_dtype = np.float16 if "tensor(float16)" in types else np.float32  # a softmax cache's dtype
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.past: dict[str, np.ndarray] = {}
        self.mask = np.zeros((0, 0), np.int64)

    def _run(self, ids: np.ndarray) -> np.ndarray:
        out = dict(zip(self.output_names, self.session.run(None, lm_io.step_feed(ids, self.mask, self.past)),
                       strict=True))
        self.past = lm_io.next_past(out)
        return out[lm_io.LOGITS][:, -1].astype(np.float32)

    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.mask = np.ascontiguousarray(attention_mask, dtype=np.int64)
        self.past = lm_io.zero_past(self.config, input_ids.shape[0], self.float_dtype)
        return self._run(np.ascontiguousarray(input_ids, dtype=np.int64))

    def step(self, tokens: np.ndarray) -> np.ndarray:
        self.mask = np.concatenate([self.mask, np.ones((self.mask.shape[0], 1), np.int64)], axis=1)
        return self._run(np.asarray(tokens, dtype=np.int64)[:, None])

    def reorder(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self.past = {k: np.ascontiguousarray(v[rows]) for k, v in self.past.items()}
        self.mask = self.mask[rows]


positions_from_mask_np = lm_io.positions  # numpy twin of models.lm.positions_from_mask (tests hold the two equal)


__all__ = ["Decoder", "OrtDecoder", "TorchDecoder", "positions_from_mask", "positions_from_mask_np"]
