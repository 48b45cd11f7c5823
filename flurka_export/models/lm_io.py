"""The exported form of the lm family: inputs, outputs, example inputs and dynamic shapes of the one ONNX
file that serves prefill and decode (optimum's and onnxruntime-genai's names)."""

from __future__ import annotations

from typing import Any

import torch

from .config import FlurkaConfig
from .lm import CausalLMWithPast, io_names, past_names, past_shape

PAST_SEQUENCE, TOTAL_SEQUENCE = "past_sequence", "total_sequence"


def export_module(model: torch.nn.Module) -> torch.nn.Module:
    return CausalLMWithPast(model).eval()


def example_inputs(config: FlurkaConfig, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Batch 2, 5 new tokens after a past of 3 (sizes 0 and 1 would be specialised by torch.export)."""
    b, t, p = 2, 5, 3
    g = torch.Generator().manual_seed(0)
    state_dtype = dtype if config.attention == "softmax" else torch.float32
    past = [torch.rand(past_shape(config, b, p), generator=g).to(state_dtype)
            for _ in range(config.num_layers) for _ in past_names(config)]
    return {"input_ids": torch.randint(0, config.vocab_size, (b, t), generator=g),
            "attention_mask": torch.ones(b, p + t, dtype=torch.int64),
            "position_ids": torch.arange(p, p + t).expand(b, t).contiguous(),
            "past_key_values": past}


def dynamic_shapes(config: FlurkaConfig, max_seq_len: int) -> dict[str, Any]:
    dim = torch.export.Dim
    batch, seq = dim("batch", min=1, max=1024), dim("sequence", min=1, max=max_seq_len)
    # The mask's length is P + T (softmax) or anything >= T (kernel: only its last T columns are read).
    total = dim.AUTO
    past = {0: batch, 2: dim(PAST_SEQUENCE, min=0, max=max_seq_len - 1)} if config.attention == "softmax" else {0: batch}
    n = config.num_layers * len(past_names(config))
    return {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: total},
            "position_ids": {0: batch, 1: seq}, "past_key_values": [past] * n}


def name_dims(model: Any) -> None:
    """Give the mask's length the name users read in optimum's files (torch.export calls it s<number>)."""
    for value in model.graph.input:
        if value.name == "attention_mask":
            value.type.tensor_type.shape.dim[1].dim_param = TOTAL_SEQUENCE


def state_bytes(config: FlurkaConfig, context: int, dtype_bytes: int = 4) -> int:
    """Bytes of past per sequence at a context length (kernel kinds: the same for every context)."""
    n = 1
    for s in past_shape(config, 1, context):
        n *= s
    return n * dtype_bytes * len(past_names(config)) * config.num_layers


__all__ = ["dynamic_shapes", "example_inputs", "export_module", "io_names", "name_dims", "state_bytes"]
