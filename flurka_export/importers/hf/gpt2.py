"""GPT-2: GPT2LMHeadModel and GPT2Model into the lm family, attention softmax (exactly GPT-2's attention).

GPT-2's Conv1D stores weights [in, out] (torch Linear is [out, in]): every one is transposed. The fused
c_attn [D, 3D] is split into query, key and value. The LM head is tied to the token embeddings; GPT2Model has
no head, and the tied head gives GPT2LMHeadModel's logits. GPT-2's bos and eos are one id and its pad is its eos.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...models.config import FlurkaConfig
from ..common import TensorPool
from .common import ACTIVATIONS, Architecture, HFImportError, norm

# Buffers that older transformers versions saved with the weights (the causal mask): no trained values.
MASK_BUFFERS = ("attn.bias", "attn.masked_bias")
# Settings that change what GPT-2 computes and that our lm family does not compute: refused by name.
FIXED = (("scale_attn_by_inverse_layer_idx", False), ("reorder_and_upcast_attn", False),
         ("scale_attn_weights", True), ("add_cross_attention", False))


def _fields(hf: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    for key, ok in FIXED:
        if hf.get(key, ok) != ok:
            raise HFImportError(f"{key}={hf[key]!r} is not supported (only {key}={ok!r})")
    act = hf.get("activation_function", "gelu_new")
    if act not in ACTIVATIONS:
        raise HFImportError(f"activation_function {act!r} is not supported; supported: {', '.join(ACTIVATIONS)}")
    d = int(hf["n_embd"])
    return dict(attention="softmax", num_layers=int(hf["n_layer"]), hidden_size=d, num_heads=int(hf["n_head"]),
                intermediate_size=int(hf.get("n_inner") or 4 * d), hidden_act=ACTIVATIONS[act],
                layer_norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)), vocab_size=int(hf["vocab_size"]),
                max_seq_len=int(hf["n_positions"]), dropout=0.0, tie_word_embeddings=True)


def _generation(hf: dict[str, Any]) -> dict[str, Any]:
    eos = hf.get("eos_token_id")
    pad = hf.get("pad_token_id")
    return {"bos_token_id": hf.get("bos_token_id"), "eos_token_id": eos, "pad_token_id": eos if pad is None else pad}


def _mapper(prefix: str) -> Any:
    def map_gpt2(pool: TensorPool, config: FlurkaConfig, notes: list[str]) -> None:
        wte = pool.peek(f"{prefix}wte.weight")
        pool.copy(f"{prefix}wte.weight", "word_embeddings.weight")
        pool.copy(f"{prefix}wpe.weight", "position_embeddings.weight")
        for i in range(config.num_layers):
            _layer(pool, f"{prefix}h.{i}.", f"layers.{i}.", config.hidden_size)
        norm(pool, f"{prefix}ln_f", "final_norm")
        if pool.has("lm_head.weight"):
            if not np.array_equal(pool.peek("lm_head.weight"), wte):
                raise HFImportError("lm_head.weight differs from transformer.wte.weight: an untied GPT-2 head is "
                                    "not supported")
            pool.drop("lm_head.weight", "tied to the token embeddings (the same matrix)")
        notes.append("Conv1D weights [in, out] transposed; c_attn split into query, key, value; LM head tied to wte")
    return map_gpt2


def _layer(pool: TensorPool, src: str, ours: str, d: int) -> None:
    norm(pool, f"{src}ln_1", f"{ours}norm1")
    w, b = pool.take(f"{src}attn.c_attn.weight"), pool.take(f"{src}attn.c_attn.bias")
    for j, name in enumerate(("query", "key", "value")):
        pool.put(f"{ours}attention.{name}.weight", w[:, j * d:(j + 1) * d].T, f"{src}attn.c_attn.weight")
        pool.put(f"{ours}attention.{name}.bias", b[j * d:(j + 1) * d], f"{src}attn.c_attn.bias")
    _conv1d(pool, f"{src}attn.c_proj", f"{ours}attention.out")
    norm(pool, f"{src}ln_2", f"{ours}norm2")
    _conv1d(pool, f"{src}mlp.c_fc", f"{ours}ffn.0")
    _conv1d(pool, f"{src}mlp.c_proj", f"{ours}ffn.2")
    for buf in MASK_BUFFERS:
        if pool.has(f"{src}{buf}"):
            pool.drop(f"{src}{buf}", "the causal-mask buffer of older transformers, not a trained tensor")


def _conv1d(pool: TensorPool, src: str, ours: str) -> None:
    pool.copy(f"{src}.weight", f"{ours}.weight", transpose=True)
    pool.copy(f"{src}.bias", f"{ours}.bias")


ARCHITECTURES = {
    "GPT2LMHeadModel": Architecture("gpt2", "lm", _fields, _mapper("transformer."), bert_like=False,
                                    generation=_generation),
    "GPT2Model": Architecture("gpt2", "lm", _fields, _mapper(""), bert_like=False, generation=_generation),
}
