"""The encoder-decoder family (task seq2seq, translation): source `input_ids` and `attention_mask` [batch,
sequence]; the decoder generates the target token by token from a decoder_start token.

In PyTorch the family trains (teacher forcing), verifies its three decoding forms against each other and
generates (greedy, sampling, beam) with cross states computed once per source. `export` writes a directory in
optimum's non-merged seq2seq layout (models/seq2seq_io.py): encoder_model.onnx, decoder_model.onnx (the first step,
which computes the cross states from the source) and decoder_with_past_model.onnx (every later step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import seq2seq_io
from ..seq2seq import FlurkaForSeq2SeqLM
from .base import BATCH, SEQUENCE, FamilySpec, Feed, Head, IOTensor, Shape

if TYPE_CHECKING:
    from torch import nn

    from ..config import FlurkaConfig

TOKENS = (BATCH, SEQUENCE)
NOT_EXPORTED = ("a seq2seq model exports to a directory of ONNX files (encoder_model.onnx, decoder_model.onnx, "
                "decoder_with_past_model.onnx), not one module; its TensorRT and Triton paths are not built yet")
PARTS = (("encoder", seq2seq_io.ENCODER_FILE), ("decoder", seq2seq_io.DECODER_FILE),
         ("decoder_with_past", seq2seq_io.DECODER_WITH_PAST_FILE))


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

    def export_parts(self, config: FlurkaConfig) -> tuple[tuple[str, str], ...]:
        return PARTS

    def export_part(self, model: nn.Module, part: str, dtype: Any, max_seq_len: int) -> dict[str, Any]:
        config = model.config
        names = seq2seq_io.io_names(config, part)
        target = seq2seq_io.decoder_config(config).max_seq_len
        guards = {"encoder": {"input_ids": max_seq_len}, "decoder": {seq2seq_io.ENC_MASK: max_seq_len, seq2seq_io.DEC_MASK: target},
                  "decoder_with_past": {seq2seq_io.DEC_MASK: target}}[part]
        return {"module": seq2seq_io.export_module(model, part), "kwargs": seq2seq_io.example_inputs(config, part, dtype),
                "input_names": names[0], "output_names": names[1], "guards": guards,
                "dynamic_shapes": seq2seq_io.dynamic_shapes(config, part, max_seq_len)}

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
