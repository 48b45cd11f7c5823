"""The exported form of the seq2seq family, optimum's seq2seq layout with states in place of K/V:

- `encoder_model.onnx`: `input_ids`, `attention_mask` [B, N] -> `last_hidden_state` [B, N, D].
- `decoder_model.onnx` (the first step): `input_ids` [B, T] (decoder tokens), `encoder_hidden_states`,
  `encoder_attention_mask`, `decoder_attention_mask` [B, T] (positions come from it) -> `logits`,
  `present.{i}.decoder.*` (the causal self-attention state) and `present.{i}.encoder.*` (the cross state,
  computed here from the source once).
- `decoder_with_past_model.onnx` (every later step): `input_ids`, `decoder_attention_mask` [B, P+T],
  `past_key_values.{i}.decoder.*` and `past_key_values.{i}.encoder.*` -> `logits`, `present.{i}.decoder.*`. It
  never reads the source: it has no encoder input.

Self-attention state names are the lm family's (`recurrent_state`, or `key`/`value`); cross state names are
`state` (kernel-*/flurka-*: S_x with z_x, [B, H, M, d+1] float32), `key`/`value` (linformer: k rows; softmax: the
source's rows) and, for softmax, `mask` [B, 1, 1, N] (1 = real source token).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..ops.feature_maps import phi_dim
from .config import FlurkaConfig, feature_map_of, is_low_rank
from .lm import empty_past, past_names, past_shape
from .seq2seq import FlurkaForSeq2SeqLM, cross_kind, decoder_config

ENCODER_FILE, DECODER_FILE, DECODER_WITH_PAST_FILE = "encoder_model.onnx", "decoder_model.onnx", \
    "decoder_with_past_model.onnx"
MERGED_FILE, USE_CACHE_BRANCH = "decoder_model_merged.onnx", "use_cache_branch"  # optimum's merged decoder
PART_FILES = {"encoder": ENCODER_FILE, "decoder": DECODER_FILE, "decoder_with_past": DECODER_WITH_PAST_FILE}
INPUT_IDS, ATTENTION_MASK, LAST_HIDDEN = "input_ids", "attention_mask", "last_hidden_state"
ENC_STATES, ENC_MASK, DEC_MASK, LOGITS = ("encoder_hidden_states", "encoder_attention_mask",
                                          "decoder_attention_mask", "logits")
PAST_PREFIX, PRESENT_PREFIX = "past_key_values.", "present."


def cross_names(config: FlurkaConfig) -> tuple[str, ...]:
    kind = cross_kind(config)
    if feature_map_of(kind) is not None:
        return ("state",)
    return ("key", "value") if is_low_rank(kind) else ("key", "value", "mask")


def state_names(config: FlurkaConfig, prefix: str, cross: bool = True) -> list[str]:
    """Per layer: the decoder's self-attention state, then (with `cross`) its cross state."""
    dec = decoder_config(config)
    out = []
    for i in range(dec.num_layers):
        out += [f"{prefix}{i}.decoder.{n}" for n in past_names(dec)]
        if cross:
            out += [f"{prefix}{i}.encoder.{n}" for n in cross_names(config)]
    return out


def is_cross_state(name: str) -> bool:
    """A present.{i}.encoder.* output (or past_key_values.{i}.encoder.* input): a cross state."""
    return ".encoder." in name


class Seq2SeqEncoder(nn.Module):
    def __init__(self, model: FlurkaForSeq2SeqLM) -> None:
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode(input_ids, attention_mask)


class Seq2SeqFirstStep(nn.Module):
    """The decoder's first call: cross states from the source, an empty self-attention past."""

    def __init__(self, model: FlurkaForSeq2SeqLM) -> None:
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor,
                encoder_attention_mask: torch.Tensor, decoder_attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cross = self.model.cross_states(encoder_hidden_states, encoder_attention_mask)
        past = empty_past(self.model.dec_config, input_ids.shape[0], encoder_hidden_states.dtype)
        logits, presents = self.model.decode(input_ids, cross, decoder_attention_mask, past)
        return (logits, *(t for p, c in zip(presents, cross, strict=True) for t in (*p, *c)))


class Seq2SeqWithPast(nn.Module):
    """Every later call: the self-attention past and the cross states come back as inputs."""

    def __init__(self, model: FlurkaForSeq2SeqLM) -> None:
        super().__init__()
        self.model, self.config = model, model.config
        self.n_self, self.n_cross = len(past_names(model.dec_config)), len(cross_names(model.config))

    def forward(self, input_ids: torch.Tensor, decoder_attention_mask: torch.Tensor,
                past_key_values: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        per = self.n_self + self.n_cross
        layers = [past_key_values[i:i + per] for i in range(0, len(past_key_values), per)]
        past = [tuple(x[:self.n_self]) for x in layers]
        cross = [tuple(x[self.n_self:]) for x in layers]
        logits, presents = self.model.decode(input_ids, cross, decoder_attention_mask, past)
        return (logits, *(t for p in presents for t in p))


def cross_shape(config: FlurkaConfig, batch: int, src_len: int) -> list[tuple[int, ...]]:
    """Shapes of one layer's cross state tensors."""
    h, d = config.num_heads, config.head_dim
    kind = cross_kind(config)
    fmap = feature_map_of(kind)
    if fmap is not None:  # S_x with z_x: [B, H, M, d+1] as the causal state, for any map (favor's too)
        return [(batch, h, phi_dim(fmap, d, config.num_features, nu=config.nu), d + 1)]
    rows = config.low_rank if is_low_rank(kind) else src_len
    kv = [(batch, h, rows, d)] * 2
    return kv if is_low_rank(kind) else [*kv, (batch, 1, 1, src_len)]


def state_shapes(config: FlurkaConfig, batch: int) -> list[tuple[int, ...]]:
    """Shapes of every past_key_values.* input, in `state_names` order, with no past and no source rows (what
    the merged decoder's first step is given for the past it does not read)."""
    dec = decoder_config(config)
    per_layer = [past_shape(dec, batch, 0)] * len(past_names(dec)) + cross_shape(config, batch, 0)
    return per_layer * dec.num_layers


def merged_feed(config: FlurkaConfig, part: str, feed: dict[str, np.ndarray],
                dtypes: dict[str, Any]) -> dict[str, np.ndarray]:
    """A "decoder" or "decoder_with_past" feed as decoder_model_merged.onnx takes it: `use_cache_branch`, and
    empty stand-ins for what the branch does not read (the past on the first step, the source later). `dtypes`:
    the merged file's input dtypes by name."""
    b = feed[INPUT_IDS].shape[0]
    full = dict(feed)
    if part == "decoder":
        for name, shape in zip(state_names(config, PAST_PREFIX), state_shapes(config, b), strict=True):
            full[name] = np.zeros(shape, dtypes[name])
    else:
        full[ENC_STATES] = np.zeros((b, 0, config.hidden_size), dtypes[ENC_STATES])
        full[ENC_MASK] = np.zeros((b, 0), np.int64)
    full[USE_CACHE_BRANCH] = np.array([part != "decoder"])
    return full


def example_inputs(config: FlurkaConfig, which: str, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Batch 2, source 6; the first step reads 3 tokens, later calls 2 tokens after a past of 3."""
    b, n, t, p = 2, 6, 3, 3
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (b, n), generator=g)
    if which == "encoder":
        return {INPUT_IDS: ids, ATTENTION_MASK: torch.ones(b, n, dtype=torch.int64)}
    if which == "decoder":
        return {INPUT_IDS: ids[:, :t], ENC_STATES: torch.rand(b, n, config.hidden_size, generator=g).to(dtype),
                ENC_MASK: torch.ones(b, n, dtype=torch.int64), DEC_MASK: torch.ones(b, t, dtype=torch.int64)}
    dec = decoder_config(config)
    past = []
    for _ in range(dec.num_layers):
        self_dtype = dtype if dec.attention == "softmax" else torch.float32
        past += [torch.rand(past_shape(dec, b, p), generator=g).to(self_dtype) for _ in past_names(dec)]
        cross_dtype = dtype if feature_map_of(cross_kind(config)) is None else torch.float32
        past += [torch.rand(s, generator=g).to(cross_dtype) for s in cross_shape(config, b, n)]
    return {INPUT_IDS: ids[:, :2], DEC_MASK: torch.ones(b, p + 2, dtype=torch.int64), "past_key_values": past}


def dynamic_shapes(config: FlurkaConfig, which: str, max_seq_len: int) -> dict[str, Any]:
    dim = torch.export.Dim
    dec = decoder_config(config)
    batch, src = dim("batch", min=1, max=1024), dim("encoder_sequence", min=1, max=max_seq_len)
    seq = dim("decoder_sequence", min=1, max=dec.max_seq_len)
    if which == "encoder":
        return {INPUT_IDS: {0: batch, 1: src}, ATTENTION_MASK: {0: batch, 1: src}}
    if which == "decoder":
        return {INPUT_IDS: {0: batch, 1: seq}, ENC_STATES: {0: batch, 1: src}, ENC_MASK: {0: batch, 1: src},
                DEC_MASK: {0: batch, 1: seq}}
    past_len = dim("past_decoder_sequence", min=0, max=dec.max_seq_len - 1)
    self_dims = {0: batch, 2: past_len} if dec.attention == "softmax" else {0: batch}
    softmax_cross = feature_map_of(cross_kind(config)) is None and not is_low_rank(cross_kind(config))
    cross = [{0: batch, 2: src}, {0: batch, 2: src}, {0: batch, 3: src}] if softmax_cross else \
        [{0: batch}] * len(cross_names(config))
    past = ([self_dims] * len(past_names(dec)) + cross) * dec.num_layers
    return {INPUT_IDS: {0: batch, 1: seq}, DEC_MASK: {0: batch, 1: dim.AUTO}, "past_key_values": past}


def io_names(config: FlurkaConfig, which: str) -> tuple[list[str], list[str]]:
    if which == "encoder":
        return [INPUT_IDS, ATTENTION_MASK], [LAST_HIDDEN]
    if which == "decoder":
        return [INPUT_IDS, ENC_STATES, ENC_MASK, DEC_MASK], [LOGITS, *state_names(config, PRESENT_PREFIX)]
    return ([INPUT_IDS, DEC_MASK, *state_names(config, PAST_PREFIX)],
            [LOGITS, *state_names(config, PRESENT_PREFIX, cross=False)])


def export_module(model: FlurkaForSeq2SeqLM, which: str) -> nn.Module:
    cls = {"encoder": Seq2SeqEncoder, "decoder": Seq2SeqFirstStep, "decoder_with_past": Seq2SeqWithPast}[which]
    return cls(model).eval()


def next_past(outputs: dict[str, np.ndarray], past: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """present.* outputs renamed as the next call's past_key_values.*, over the previous past (cross states that
    a later call does not return again are kept)."""
    new = {PAST_PREFIX + k[len(PRESENT_PREFIX):]: v for k, v in outputs.items() if k.startswith(PRESENT_PREFIX)}
    return {**past, **new}
