"""The decoder-only `lm` family (GPT-style): pre-LN blocks, learned positions, causal self-attention with a
past, an LM head tied to the embeddings or not.

Attention is `softmax` (with a KV cache that grows with the context) or `kernel-<map>` for a causal feature
map (a recurrent state [B, H, M, d+1] whose size does not depend on the context; docs/op-spec.md,
"Causal kernel attention"). Positions come from the attention mask, so left-padded batches work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import NEEDS_FEATURE_PROJ
from ..ops.causal import causal_kernel_attention, causal_state_shape
from .activations import activation
from .attention import SequenceTooLongError
from .config import FlurkaConfig
from .random_features import draw_feature_proj

# One layer's past: (key, value) [B, H, P, d] each for softmax; (state,) [B, H, M, d+1] for kernel kinds.
LayerPast = tuple[torch.Tensor, ...]


def past_names(config: FlurkaConfig) -> tuple[str, ...]:
    """The per-layer state tensors, as optimum and onnxruntime-genai name them (past_key_values.{i}.<name>)."""
    return ("key", "value") if config.attention == "softmax" else ("recurrent_state",)


def past_shape(config: FlurkaConfig, batch: int, past_len: int) -> tuple[int, ...]:
    """Shape of each past tensor of one layer (softmax: grows with past_len; kernel: constant)."""
    h, d = config.num_heads, config.head_dim
    if config.attention == "softmax":
        return (batch, h, past_len, d)
    return (batch, *causal_state_shape(h, d, config.feature_map, config.num_features, config.nu))


def empty_past(config: FlurkaConfig, batch: int, dtype: torch.dtype = torch.float32) -> list[LayerPast]:
    """The past before the first token: an empty KV cache, or zero states (always float32)."""
    state_dtype = dtype if config.attention == "softmax" else torch.float32
    return [tuple(torch.zeros(past_shape(config, batch, 0), dtype=state_dtype) for _ in past_names(config))
            for _ in range(config.num_layers)]


def check_context(length: int, limit: int) -> None:
    if length > limit:
        raise SequenceTooLongError(
            f"context length {length} (past + new tokens, the length of attention_mask) exceeds the model's "
            f"max_seq_len {limit}: it has {limit} learned positions; longer contexts are refused, never truncated")


def positions_from_mask(attention_mask: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """position_ids [B, T] of the last `new_tokens` columns: real tokens count 0, 1, 2, ... from the first real
    one (left padding shifts nothing); pad columns get 0."""
    pos = attention_mask.long().cumsum(-1) - 1
    return last_columns(pos.clamp(min=0), new_tokens)


def last_columns(mask: torch.Tensor, n: int) -> torch.Tensor:
    """mask[:, -n:] with a length torch.export knows is exactly n (a slice start would be data-dependent)."""
    return mask.narrow(1, mask.shape[1] - n, n)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: FlurkaConfig, layer_idx: int = 0) -> None:
        super().__init__()
        d_model, h = config.hidden_size, config.num_heads
        self.kind = config.attention
        self.num_heads = h
        self.feature_map = config.feature_map
        self.attrs = {"stabilizer": config.stabilizer, "eps": config.eps, "nu": config.nu}
        self.dropout = config.dropout
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        if self.feature_map in NEEDS_FEATURE_PROJ:
            seed = config.seed * 100003 + layer_idx + 7919
            proj = draw_feature_proj(self.feature_map, h, config.num_features, config.head_dim, seed)
            self.register_buffer("feature_proj", proj)
        else:
            self.feature_proj = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor, past: LayerPast) -> tuple[torch.Tensor, LayerPast]:
        """x [B, T, D]; mask [B, P+T] (1 = real token); past as `past_names`. Returns y [B, T, D], present."""
        q, k, v = self.query(x), self.key(x), self.value(x)
        if self.feature_map is None:
            ctx, present = self._softmax(q, k, v, mask, past)
        else:
            proj = None if self.feature_proj is None else self.feature_proj.to(q.dtype)
            ctx, state = causal_kernel_attention(
                q, k, v, past[0], proj, num_heads=self.num_heads, feature_map=self.feature_map,
                key_mask=last_columns(mask, x.shape[1]), **self.attrs)
            present = (state,)
        return self.out(ctx), present

    def _softmax(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                 past: LayerPast) -> tuple[torch.Tensor, LayerPast]:
        b, t, dm = q.shape
        h = self.num_heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(b, x.shape[1], h, dm // h).transpose(1, 2)

        k = torch.cat([past[0].to(q.dtype), heads(k)], dim=2)
        v = torch.cat([past[1].to(q.dtype), heads(v)], dim=2)
        p = k.shape[2] - t
        cols = torch.arange(k.shape[2], device=q.device)
        rows = torch.arange(t, device=q.device) + p
        causal = cols[None, :] <= rows[:, None]  # [T, P+T]
        # A query always sees itself: a left-pad row whose keys are all padding stays finite (never NaN), and
        # a real row's own key is real, so this adds nothing it could not already see.
        allowed = (causal & mask[:, None, None, :].bool()) | (cols[None, :] == rows[:, None])
        ctx = F.scaled_dot_product_attention(heads(q), k, v, attn_mask=allowed,
                                             dropout_p=self.dropout if self.training else 0.0)
        return ctx.transpose(1, 2).reshape(b, t, dm), (k, v)


class DecoderLayer(nn.Module):
    def __init__(self, config: FlurkaConfig, layer_idx: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.attention = CausalSelfAttention(config, layer_idx)
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.ffn = nn.Sequential(nn.Linear(d, config.ffn_size), activation(config.hidden_act),
                                 nn.Linear(config.ffn_size, d))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, past: LayerPast) -> tuple[torch.Tensor, LayerPast]:
        a, present = self.attention(self.norm1(x), mask, past)
        x = x + self.drop(a)
        return x + self.drop(self.ffn(self.norm2(x))), present


class FlurkaForCausalLM(nn.Module):
    """`model(input_ids, attention_mask)` returns logits [B, T, V]; with `use_cache=True` (or a past) it returns
    (logits, presents), presents one tuple per layer in `past_names` order, to feed back as `past_key_values`."""

    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, d)
        self.position_embeddings = nn.Embedding(config.max_seq_len, d)
        nn.init.normal_(self.position_embeddings.weight, std=0.02)
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_layers))
        self.final_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        if not config.tie_word_embeddings:
            self.lm_head = nn.Linear(d, config.vocab_size, bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, past_key_values: list[LayerPast] | None = None,
                use_cache: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[LayerPast]]:
        b, t = input_ids.shape
        want_cache = use_cache or past_key_values is not None
        past = past_key_values if past_key_values is not None else empty_past(self.config, b, self.dtype_of())
        past_len = past[0][0].shape[2] if self.config.attention == "softmax" else None
        if attention_mask is None:
            if past_len is None and past_key_values is not None:
                raise ValueError("a recurrent state carries no length: pass attention_mask [B, P+T] with the past")
            attention_mask = torch.ones(b, (past_len or 0) + t, dtype=torch.int64, device=input_ids.device)
        if not torch.onnx.is_in_onnx_export():
            check_context(attention_mask.shape[1], self.config.max_seq_len)
        if position_ids is None:
            position_ids = positions_from_mask(attention_mask, t)
        x = self.drop(self.word_embeddings(input_ids) + self.position_embeddings(position_ids))
        real = last_columns(attention_mask, t)[:, :, None].bool()
        presents = []
        for layer, layer_past in zip(self.layers, past, strict=True):
            x, present = layer(x, attention_mask, layer_past)
            # Pad rows carry nothing forward: a left-pad row (no real key before it) is zeroed, so its keys
            # and values stay finite in the next layer (0 * NaN would otherwise reach the state).
            x = torch.where(real, x, torch.zeros((), dtype=x.dtype, device=x.device))
            presents.append(present)
        logits = self.logits(self.final_norm(x))
        return (logits, presents) if want_cache else logits

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        if self.config.tie_word_embeddings:
            return F.linear(h, self.word_embeddings.weight)
        return self.lm_head(h)

    def dtype_of(self) -> torch.dtype:
        return self.word_embeddings.weight.dtype


class CausalLMWithPast(nn.Module):
    """The exported form: flat named inputs (input_ids, attention_mask, position_ids, then each layer's past in
    `past_names` order) and flat outputs (logits, then each layer's present in the same order)."""

    def __init__(self, model: FlurkaForCausalLM) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        self.per_layer = len(past_names(model.config))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                past_key_values: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        n, past = self.per_layer, past_key_values
        layers = [tuple(past[i:i + n]) for i in range(0, len(past), n)]
        logits, presents = self.model(input_ids, attention_mask, position_ids, past_key_values=layers, use_cache=True)
        return (logits, *(t for layer in presents for t in layer))


def io_names(config: FlurkaConfig) -> tuple[list[str], list[str]]:
    """ONNX input and output names of the exported lm (optimum's and onnxruntime-genai's)."""
    names = past_names(config)
    past = [f"past_key_values.{i}.{n}" for i in range(config.num_layers) for n in names]
    present = [f"present.{i}.{n}" for i in range(config.num_layers) for n in names]
    return ["input_ids", "attention_mask", "position_ids", *past], ["logits", *present]
