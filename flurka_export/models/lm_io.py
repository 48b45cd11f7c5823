"""The exported form of the lm family: inputs, outputs, example inputs and dynamic shapes of the one ONNX
file that serves prefill and decode (optimum's and onnxruntime-genai's names)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .config import FlurkaConfig
from .lm import CausalLMWithPast, io_names, past_names, past_shape

PAST_SEQUENCE, TOTAL_SEQUENCE = "past_sequence", "total_sequence"
# The tensor names of the exported lm (optimum's and onnxruntime-genai's); code outside models/ uses these.
INPUT_IDS, ATTENTION_MASK, POSITION_IDS, LOGITS = "input_ids", "attention_mask", "position_ids", "logits"
PAST_PREFIX, PRESENT_PREFIX = "past_key_values.", "present."


def positions(mask: np.ndarray, new_tokens: int) -> np.ndarray:
    """position_ids [B, T] of the last T columns of an attention_mask (numpy twin of lm.positions_from_mask)."""
    pos = np.maximum(np.cumsum(mask, axis=-1) - 1, 0)
    return np.ascontiguousarray(pos[:, mask.shape[1] - new_tokens:], dtype=np.int64)


def step_feed(input_ids: np.ndarray, attention_mask: np.ndarray, past: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The exported model's feed for one call: the new tokens, the whole mask (past + new), positions from the
    mask, and the past (`past_key_values.*`)."""
    ids = np.ascontiguousarray(input_ids, dtype=np.int64)
    mask = np.ascontiguousarray(attention_mask, dtype=np.int64)
    return {INPUT_IDS: ids, ATTENTION_MASK: mask, POSITION_IDS: positions(mask, ids.shape[1]), **past}


def zero_past(config: FlurkaConfig, batch: int, float_dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """The past before the first token, by input name: an empty KV cache (softmax, in the model's float dtype) or
    zero states (always float32)."""
    out = {}
    for i in range(config.num_layers):
        for name in past_names(config):
            dtype = float_dtype if config.attention == "softmax" else np.float32
            out[f"{PAST_PREFIX}{i}.{name}"] = np.zeros(past_shape(config, batch, 0), dtype)
    return out


def next_past(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """present.* outputs renamed as the next call's past_key_values.* inputs."""
    return {PAST_PREFIX + k[len(PRESENT_PREFIX):]: v for k, v in outputs.items() if k.startswith(PRESENT_PREFIX)}


def export_module(model: torch.nn.Module) -> torch.nn.Module:
    return CausalLMWithPast(model).eval()


def example_inputs(config: FlurkaConfig, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Batch 2, 5 new tokens after a past of 3 (sizes 0 and 1 would be specialised by torch.export)."""
    b, t, p = 2, 5, 3
    g = torch.Generator().manual_seed(0)
    state_dtype = dtype if config.attention == "softmax" else torch.float32
    past = [torch.rand(past_shape(config, b, p), generator=g).to(state_dtype)
            for _ in range(config.num_layers) for _ in past_names(config)]
    return {INPUT_IDS: torch.randint(0, config.vocab_size, (b, t), generator=g),
            ATTENTION_MASK: torch.ones(b, p + t, dtype=torch.int64),
            POSITION_IDS: torch.arange(p, p + t).expand(b, t).contiguous(),
            "past_key_values": past}


def dynamic_shapes(config: FlurkaConfig, max_seq_len: int) -> dict[str, Any]:
    dim = torch.export.Dim
    batch, seq = dim("batch", min=1, max=1024), dim("sequence", min=1, max=max_seq_len)
    # The mask's length is P + T (softmax) or anything >= T (kernel: only its last T columns are read).
    total = dim.AUTO
    past = {0: batch, 2: dim(PAST_SEQUENCE, min=0, max=max_seq_len - 1)} if config.attention == "softmax" else {0: batch}
    n = config.num_layers * len(past_names(config))
    return {INPUT_IDS: {0: batch, 1: seq}, ATTENTION_MASK: {0: batch, 1: total},
            POSITION_IDS: {0: batch, 1: seq}, "past_key_values": [past] * n}


def name_dims(model: Any) -> None:
    """Give the mask's length the name users read in optimum's files (torch.export calls it s<number>)."""
    for value in model.graph.input:
        if value.name == ATTENTION_MASK:
            value.type.tensor_type.shape.dim[1].dim_param = TOTAL_SEQUENCE


def state_bytes(config: FlurkaConfig, context: int, dtype_bytes: int = 4) -> int:
    """Bytes of past per sequence at a context length (kernel kinds: the same for every context)."""
    n = 1
    for s in past_shape(config, 1, context):
        n *= s
    return n * dtype_bytes * len(past_names(config)) * config.num_layers


__all__ = [
    "ATTENTION_MASK", "INPUT_IDS", "LOGITS", "PAST_PREFIX", "POSITION_IDS", "PRESENT_PREFIX", "dynamic_shapes",
    "example_inputs", "export_module", "io_names", "name_dims", "next_past", "positions", "state_bytes", "step_feed",
    "zero_past",
]
