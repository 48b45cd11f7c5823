"""The decoder-only language-model family (task lm): one ONNX file for prefill and decode.

Inputs `input_ids` and `position_ids` [batch, sequence], `attention_mask` [batch, total_sequence] (past + new
tokens; left padding), and per layer the past: `past_key_values.{i}.recurrent_state` [batch, H, M, d+1]
float32 for kernel kinds (constant size), `past_key_values.{i}.key` / `.value` [batch, H, past_sequence, d] for
softmax (a KV cache). Outputs `logits` [batch, sequence, vocab] and `present.{i}.*`. verify prefills a
left-padded batch and then decodes steps, each runtime feeding its own presents back.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from ..lm import FlurkaForCausalLM, past_names, past_shape
from ..lm_io import (
    ATTENTION_MASK,
    INPUT_IDS,
    LOGITS,
    PAST_PREFIX,
    POSITION_IDS,
    PRESENT_PREFIX,
    TOTAL_SEQUENCE,
    dynamic_shapes,
    example_inputs,
    export_module,
    name_dims,
)
from .base import BATCH, SEQUENCE, FamilySpec, Feed, FeedDriver, Head, IOTensor, Outputs, PrefillThenSteps, Shape

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..config import FlurkaConfig

VERIFY_STEPS = 16  # decode steps after each prefill in verify


class LMSpec(FamilySpec):
    family = "lm"
    order = 20
    heads = {"lm": Head("lm", FlurkaForCausalLM, "logits", (BATCH, SEQUENCE, "vocab"))}
    generates = True
    default_attention = "kernel-elu"  # causal: the low-rank kinds cannot be
    token_input, mask_input = "input_ids", "attention_mask"

    def validate(self, config: FlurkaConfig) -> str | None:
        from ..config import causal_attention_error

        return causal_attention_error(config.attention)

    def pre_norm_default(self) -> bool:
        return True

    def hook_layers(self, model: nn.Module) -> list[nn.Module]:
        return list(model.layers)

    def _states(self, config: FlurkaConfig, prefix: str, seq: str) -> list[IOTensor]:
        softmax = config.attention == "softmax"
        dims = past_shape(config, 1, 0)[1:]
        out = []
        for i in range(config.num_layers):
            for name in past_names(config):
                shape = (BATCH, dims[0], seq, dims[2]) if softmax else (BATCH, *dims)
                out.append(IOTensor(f"{prefix}{i}.{name}", "float" if softmax else "float32", shape))
        return out

    def inputs(self, config: FlurkaConfig) -> list[IOTensor]:
        return [IOTensor("input_ids", "int64", (BATCH, SEQUENCE)),
                IOTensor("attention_mask", "int64", (BATCH, TOTAL_SEQUENCE)),
                IOTensor("position_ids", "int64", (BATCH, SEQUENCE)),
                *self._states(config, "past_key_values.", "past_sequence")]

    def outputs(self, config: FlurkaConfig) -> list[IOTensor]:
        return [IOTensor("logits", "float", (BATCH, SEQUENCE, "vocab")),
                *self._states(config, "present.", "past_sequence + sequence")]

    def sequence_inputs(self, config: FlurkaConfig) -> list[str]:
        return ["input_ids", "attention_mask"]

    # -- export -----------------------------------------------------------------------------------------------
    def export_module(self, model: nn.Module) -> nn.Module:
        return export_module(model)

    def example_inputs(self, config: FlurkaConfig, batch: int = 2, seq_len: int | None = None,
                       dtype: torch.dtype | None = None) -> dict[str, Any]:
        import torch

        return example_inputs(config, dtype or torch.float32)

    def dynamic_shapes(self, config: FlurkaConfig, max_seq_len: int) -> dict[str, Any]:
        return dynamic_shapes(config, max_seq_len)

    def torch_kwargs(self, config: FlurkaConfig, feeds: dict[str, Any]) -> dict[str, Any]:
        """Flat past_key_values.{i}.* feeds as the one list CausalLMWithPast takes, in input order."""
        names = [t.name for t in self.inputs(config)]
        past = [feeds[n] for n in names if n.startswith("past_key_values.")]
        return {**{n: feeds[n] for n in names[:3]}, "past_key_values": past}

    def finish_export(self, config: FlurkaConfig, model: Any) -> None:
        name_dims(model)

    # -- verify -----------------------------------------------------------------------------------------------
    def default_shapes(self, config: FlurkaConfig, max_seq_len: int | None = None) -> list[Shape]:
        """A one-token prompt and a left-padded batch, each followed by VERIFY_STEPS decode steps."""
        hi = min(config.max_seq_len, max_seq_len or config.max_seq_len) - VERIFY_STEPS
        return [(1, 1), (3, max(1, min(hi, 24)))]

    def check_shapes(self, config: FlurkaConfig, max_seq_len: int | None) -> tuple[int, int]:
        lo, hi = super().check_shapes(config, max_seq_len)
        return lo, max(lo, hi - VERIFY_STEPS)

    def make_feed(self, config: FlurkaConfig, shape: Shape, seed: int = 0, float_dtype: str = "float32",
                  pad: bool = True) -> Feed:
        """A prefill: token ids inside the vocabulary, left padding (row i has fewer real tokens), positions
        from the mask, and the empty past (an empty KV cache, or zero states)."""
        rng = np.random.default_rng(seed)
        b, n = shape
        ids = rng.integers(0, config.vocab_size, size=(b, n), dtype=np.int64)
        mask = np.ones((b, n), np.int64)
        if pad and b > 1 and n > 1:
            for row in range(1, b):
                mask[row, :(row * n) // (b + 1)] = 0
        feed = {"input_ids": ids, "attention_mask": mask, "position_ids": _positions(mask, n)}
        for t in self._states(config, "past_key_values.", "past_sequence"):
            dims = tuple(b if d == BATCH else 0 if isinstance(d, str) else d for d in t.dims)
            feed[t.name] = np.zeros(dims, float_dtype if t.dtype == "float" else "float32")
        return feed

    def verify_cases(self, config: FlurkaConfig, shapes: list[Shape], seed: int = 0,
                     float_dtype: str = "float32") -> list[FeedDriver]:
        cases: list[FeedDriver] = []
        for i, (b, n) in enumerate(shapes):
            tokens = np.random.default_rng(seed + 1000 + i).integers(0, config.vocab_size, (VERIFY_STEPS, b, 1))
            prefill = self.make_feed(config, (b, n), seed + i, float_dtype)
            # The same tokens in one prefill: its logits must equal prefill T + K steps in each runtime.
            mask = np.concatenate([prefill["attention_mask"], np.ones((b, VERIFY_STEPS), np.int64)], axis=1)
            whole = {**prefill, "input_ids": np.concatenate([prefill["input_ids"], *tokens[:, :, 0, None]], axis=1),
                     "attention_mask": mask, "position_ids": _positions(mask, n + VERIFY_STEPS)}
            cases.append(PrefillThenSteps(f"{b}x{n}+{VERIFY_STEPS}", prefill, VERIFY_STEPS, _next_feed(tokens), whole))
        return cases

    # -- TensorRT and serving ---------------------------------------------------------------------------------
    def serving(self, config: FlurkaConfig, max_seq_len: int | None = None) -> Any:
        """Served token by token (Triton's generate endpoints, serve/generate_model.py): a causal decoder whose
        one ONNX file prefills and steps, its past fed back by name."""
        io = super().serving(config, max_seq_len)
        roles = {"decoder": "causal", "token_input": INPUT_IDS, "mask_input": ATTENTION_MASK,
                 "position_input": POSITION_IDS, "logits_output": LOGITS, "past_prefix": PAST_PREFIX,
                 "present_prefix": PRESENT_PREFIX}
        return dataclasses.replace(io, padding_invariant=False, generation=tuple(roles.items()))

    def trt_unsupported(self, config: FlurkaConfig) -> str | None:
        return ("the lm family has no TensorRT path yet (its causal kernel attention is LinearAttention and its "
                "past is fed back between calls); run it in PyTorch or ONNX Runtime")


def _positions(mask: np.ndarray, new_tokens: int) -> np.ndarray:
    pos = np.maximum(np.cumsum(mask, axis=-1) - 1, 0)
    return np.ascontiguousarray(pos[:, mask.shape[1] - new_tokens:], dtype=np.int64)


def _next_feed(tokens: np.ndarray) -> Any:
    """Step i's feed: fixed tokens (the same for every runtime), one more mask column, the next position."""

    def next_feed(i: int, feed: Feed, outputs: Outputs) -> Feed:
        mask = np.concatenate([feed["attention_mask"], np.ones((tokens.shape[1], 1), np.int64)], axis=1)
        return {"input_ids": tokens[i - 1].astype(np.int64), "attention_mask": mask,
                "position_ids": _positions(mask, 1)}
    return next_feed


SPEC = LMSpec()
