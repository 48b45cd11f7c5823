"""The encoder-decoder `seq2seq` family (translation): today's text encoder (any kind, FLuRKA by default) and a
pre-LN decoder whose blocks have causal self-attention (softmax or kernel-<causal map>, with a past) and
cross-attention over the encoder output.

Cross-attention is not causal: the whole source is known before the first target token, so every kind works
there. Its keys and values are reduced once per source sentence to a per-layer cross state
(`CrossAttention.state`), and each decoding step reads only that state:
- kernel-* and flurka-*: S_x = phi(K~)^T [V~, 1], one float32 tensor [B, H, M, d+1] (z_x in the last column), as
  the causal state; flurka-* first shortens the source to k rows with E_K, E_V (padding masked before), kernel-*
  removes pad keys with a select. A step costs O(M d) per head whatever the source length.
- linformer: the k shortened keys and values [B, H, k, d] each (softmax over k rows: constant size too).
- softmax: the whole source's keys and values and its mask (the baseline: grows with the source).
Word embeddings are shared by encoder, decoder and the tied LM head (one vocabulary, one tokenizer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import NEEDS_FEATURE_PROJ
from ..ops.feature_maps import denominator, phi
from .activations import activation
from .attention import check_seq_len
from .config import FlurkaConfig, feature_map_of, is_low_rank
from .families import TextEncoder
from .lm import CausalSelfAttention, LayerPast, check_context, empty_past, positions_from_mask
from .random_features import draw_feature_proj

CrossState = tuple[torch.Tensor, ...]


def decoder_config(config: FlurkaConfig) -> FlurkaConfig:
    """The config the decoder's self-attention reads: the decoder's kind, layers and positions."""
    target = config.max_target_len or config.max_seq_len
    return config.replace(attention=config.decoder_attention or "kernel-elu",
                          num_layers=config.num_decoder_layers or config.num_layers,
                          max_seq_len=target, low_rank=min(config.low_rank, target),
                          decoder_attention=None, cross_attention=None, num_decoder_layers=None, max_target_len=None,
                          task="lm")


def cross_kind(config: FlurkaConfig) -> str:
    return config.cross_attention or config.attention


class CrossAttention(nn.Module):
    """Attention of decoder queries over the encoder output, split into the per-source state and the per-step read."""

    def __init__(self, config: FlurkaConfig, layer_idx: int) -> None:
        super().__init__()
        d_model, h = config.hidden_size, config.num_heads
        self.kind, self.num_heads = cross_kind(config), h
        self.feature_map = feature_map_of(self.kind)
        self.attrs = {"stabilizer": config.stabilizer, "eps": config.eps, "nu": config.nu}
        self.query, self.key = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.value, self.out = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        seed = config.seed * 100003 + 50000 + layer_idx
        if is_low_rank(self.kind):
            g = torch.Generator().manual_seed(seed)
            k, n_max = config.low_rank, config.max_seq_len
            self.E_K = nn.Parameter(torch.randn(k, n_max, generator=g) / k)
            self.E_V = nn.Parameter(torch.randn(k, n_max, generator=g) / k)
        proj = None
        if self.feature_map in NEEDS_FEATURE_PROJ:
            proj = draw_feature_proj(self.feature_map, h, config.num_features, config.head_dim, seed + 7919)
        self.register_buffer("feature_proj", proj)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, dm = x.shape
        return x.reshape(b, n, self.num_heads, dm // self.num_heads).transpose(1, 2)

    def state(self, enc: torch.Tensor, mask: torch.Tensor) -> CrossState:
        """The cross state of one source batch: enc [B, N, D], mask [B, N] (1 = real token)."""
        keep = mask.bool()[:, :, None]
        xm = torch.where(keep, enc, torch.zeros((), dtype=enc.dtype))
        if is_low_rank(self.kind):  # shorten first: pad rows are already zero, so E_K sees only real tokens
            n = enc.shape[1]
            xk, xv = self.E_K[:, :n].to(enc.dtype) @ xm, self.E_V[:, :n].to(enc.dtype) @ xm
        else:
            xk = xv = xm
        k, v = self._heads(self.key(xk)), self._heads(self.value(xv))
        if self.feature_map is None:
            return (k, v) if is_low_rank(self.kind) else (k, v, mask.to(k.dtype)[:, None, None, :])
        proj = None if self.feature_proj is None else self.feature_proj.float()
        phk = phi(k.float(), self.feature_map, proj, is_query=False, **self.attrs)
        v1 = torch.cat([v.float(), torch.ones_like(v[..., :1], dtype=torch.float32)], dim=-1)
        if not is_low_rank(self.kind):  # kernel-*: pad keys removed with a select, never multiplied
            row = keep[:, None, :, :]
            phk, v1 = torch.where(row, phk, 0.0), torch.where(row, v1, 0.0)
        return (phk.transpose(-1, -2) @ v1,)  # [B, H, M, d+1]

    def forward(self, x: torch.Tensor, state: CrossState) -> torch.Tensor:
        b, t, dm = x.shape
        q = self._heads(self.query(x))
        if self.feature_map is None:
            bias = None if len(state) == 2 else torch.where(state[2] > 0, 0.0, float("-inf")).to(q.dtype)
            ctx = F.scaled_dot_product_attention(q, state[0], state[1], attn_mask=bias)
        else:
            proj = None if self.feature_proj is None else self.feature_proj.float()
            o = phi(q.float(), self.feature_map, proj, is_query=True, **self.attrs) @ state[0]
            ctx = (o[..., :-1] / denominator(o[..., -1:], self.feature_map, **self.attrs)).to(x.dtype)
        return self.out(ctx.transpose(1, 2).reshape(b, t, dm))


class DecoderBlock(nn.Module):
    def __init__(self, config: FlurkaConfig, layer_idx: int) -> None:
        super().__init__()
        dec = decoder_config(config)
        d = config.hidden_size
        self.norm1, self.attention = nn.LayerNorm(d, eps=config.layer_norm_eps), CausalSelfAttention(dec, layer_idx)
        self.norm2, self.cross = nn.LayerNorm(d, eps=config.layer_norm_eps), CrossAttention(config, layer_idx)
        self.norm3 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.ffn = nn.Sequential(nn.Linear(d, config.ffn_size), activation(config.hidden_act),
                                 nn.Linear(config.ffn_size, d))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, past: LayerPast,
                cross: CrossState) -> tuple[torch.Tensor, LayerPast]:
        a, present = self.attention(self.norm1(x), mask, past)
        x = x + self.drop(a)
        x = x + self.drop(self.cross(self.norm2(x), cross))
        return x + self.drop(self.ffn(self.norm3(x))), present


class FlurkaForSeq2SeqLM(nn.Module):
    """`model(input_ids, attention_mask, decoder_input_ids)` returns the decoder's logits [B, T, V] (teacher
    forcing). Generation: `encode`, `cross_states` once per source, then `decode` step by step with a past."""

    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        self.dec_config = decoder_config(config)
        d = config.hidden_size
        self.encoder = TextEncoder(config)
        self.decoder_positions = nn.Embedding(self.dec_config.max_seq_len, d)
        nn.init.normal_(self.decoder_positions.weight, std=0.02)
        self.layers = nn.ModuleList(DecoderBlock(config, i) for i in range(self.dec_config.num_layers))
        self.final_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask)

    def cross_states(self, enc: torch.Tensor, attention_mask: torch.Tensor | None = None) -> list[CrossState]:
        mask = torch.ones(enc.shape[:2], dtype=torch.int64) if attention_mask is None else attention_mask
        return [layer.cross.state(enc, mask) for layer in self.layers]

    def decode(self, decoder_input_ids: torch.Tensor, cross: list[CrossState],
               decoder_attention_mask: torch.Tensor | None = None,
               past: list[LayerPast] | None = None) -> tuple[torch.Tensor, list[LayerPast]]:
        b, t = decoder_input_ids.shape
        softmax = self.dec_config.attention == "softmax"
        if decoder_attention_mask is None:
            if past is not None and not softmax:
                raise ValueError("a recurrent state carries no length: pass decoder_attention_mask [B, P+T]")
            p = past[0][0].shape[2] if past is not None else 0
            decoder_attention_mask = torch.ones(b, p + t, dtype=torch.int64)
        past = past if past is not None else empty_past(self.dec_config, b, self.encoder.word_embeddings.weight.dtype)
        check_context(decoder_attention_mask.shape[1], self.dec_config.max_seq_len)
        pos = positions_from_mask(decoder_attention_mask, t)
        x = self.drop(self.encoder.word_embeddings(decoder_input_ids) + self.decoder_positions(pos))
        presents = []
        for layer, layer_past, layer_cross in zip(self.layers, past, cross, strict=True):
            x, present = layer(x, decoder_attention_mask, layer_past, layer_cross)
            presents.append(present)
        h = self.final_norm(x)
        return F.linear(h, self.encoder.word_embeddings.weight), presents

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None) -> torch.Tensor:
        if decoder_input_ids is None:
            raise ValueError("a seq2seq model needs decoder_input_ids (the target, shifted right)")
        check_seq_len(input_ids.shape[1], self.config.max_seq_len)
        enc = self.encode(input_ids, attention_mask)
        logits, _ = self.decode(decoder_input_ids, self.cross_states(enc, attention_mask))
        return logits
