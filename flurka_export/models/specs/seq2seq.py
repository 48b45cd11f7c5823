"""The encoder-decoder family (task seq2seq, translation): source `input_ids` and `attention_mask` [batch,
sequence]; the decoder generates the target token by token from a decoder_start token.

In PyTorch the family trains (teacher forcing), verifies its three decoding forms against each other and
generates (greedy, sampling, beam) with cross states computed once per source. Its ONNX export (encoder_model.onnx
and decoder_model.onnx with past and cross states, optimum's seq2seq layout) is not built yet: `export` says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..seq2seq import FlurkaForSeq2SeqLM
from .base import BATCH, SEQUENCE, FamilySpec, Feed, Head, IOTensor, Shape

if TYPE_CHECKING:
    from torch import nn

    from ..config import FlurkaConfig

TOKENS = (BATCH, SEQUENCE)
NOT_EXPORTED = ("exporting a seq2seq model (encoder_model.onnx + decoder_model.onnx with past and cross states) is "
                "not built yet; it trains, verifies its decoding forms and generates in PyTorch")


class Seq2SeqSpec(FamilySpec):
    family = "seq2seq"
    order = 30
    heads = {"seq2seq": Head("seq2seq", FlurkaForSeq2SeqLM, "logits", (BATCH, "target_sequence", "vocab"))}
    generates = True
    token_input, mask_input = "input_ids", "attention_mask"

    def validate(self, config: FlurkaConfig) -> str | None:
        from ..config import causal_attention_error

        why = causal_attention_error(config.decoder_attention or "kernel-elu")
        return f"decoder_attention: {why}" if why else None

    def pre_norm_default(self) -> bool:
        return True

    def hook_layers(self, model: nn.Module) -> list[nn.Module]:
        return list(model.encoder.layers)

    def inputs(self, config: FlurkaConfig) -> list[IOTensor]:
        return [IOTensor(n, "int64", TOKENS) for n in ("input_ids", "attention_mask", "decoder_input_ids")]

    def export_module(self, model: nn.Module) -> nn.Module:
        raise ValueError(NOT_EXPORTED)

    def make_feed(self, config: FlurkaConfig, shape: Shape, seed: int = 0, float_dtype: str = "float32",
                  pad: bool = True) -> Feed:
        """A source batch (right padding: row i keeps fewer real tokens) and a target of the same length."""
        rng = np.random.default_rng(seed)
        b, n = shape
        mask = np.ones((b, n), np.int64)
        if pad and b > 1 and n > 1:
            for row in range(1, b):
                mask[row, max(1, n - (row * n) // (b + 1)):] = 0
        return {"input_ids": rng.integers(0, config.vocab_size, (b, n), dtype=np.int64), "attention_mask": mask,
                "decoder_input_ids": rng.integers(0, config.vocab_size, (b, n), dtype=np.int64)}

    def trt_unsupported(self, config: FlurkaConfig) -> str | None:
        return NOT_EXPORTED

    def serving(self, config: FlurkaConfig, max_seq_len: int | None = None) -> Any:
        raise ValueError(NOT_EXPORTED)


SPEC = Seq2SeqSpec()
