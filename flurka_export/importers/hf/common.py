"""What the Hugging Face architectures share: reading a save_pretrained directory, the config fields every
architecture has, the BERT-style text encoder's tensors, and the dense / LayerNorm / masked-LM head mappers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...models.config import FlurkaConfig
from ..common import TensorPool


class HFImportError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One transformers class: our task, how its config and its tensors map onto our model."""

    model_type: str  # config.json's model_type
    task: str  # our config.task (family and head)
    fields: Callable[[dict[str, Any], dict[str, np.ndarray]], dict[str, Any]]  # FlurkaConfig fields of this class
    map_tensors: Callable[[TensorPool, FlurkaConfig, list[str]], None]  # every tensor into its place
    bert_like: bool = True  # config.json names sizes as BERT does (hidden_size, ...): common_fields applies
    # generation_config.json fields (bos/eos/pad token ids) of a class that generates; None for encoders
    generation: Callable[[dict[str, Any]], dict[str, Any]] | None = None


ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
               "relu": "relu", "silu": "silu", "swish": "silu"}
# Buffers that older transformers versions saved with the weights; they hold no trained values.
BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


# ----------------------------------------------------------------------------------------------
# Reading the directory


def read_hf_dir(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """config.json and every tensor of model.safetensors (or of the shards its index lists)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    d = Path(directory)
    if not d.is_dir():
        what = "a file" if d.exists() else "missing"
        raise HFImportError(f"{d} is {what}; expected a directory written by transformers' save_pretrained")
    config = _read_json(d / "config.json")
    index = d / "model.safetensors.index.json"
    files = [d / "model.safetensors"] if (d / "model.safetensors").is_file() else []
    if not files and index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        files = [d / s for s in shards]
    if not files:
        pickled = [p.name for p in d.glob("*.bin")] + [p.name for p in d.glob("*.pt")]
        if pickled:
            raise HFImportError(f"{d} has only {pickled[0]} (pickled weights, never loaded here); save it with "
                                f"safe_serialization=True (transformers' default) to get model.safetensors")
        raise HFImportError(f"{d} has no model.safetensors")
    tensors: dict[str, np.ndarray] = {}
    for f in files:
        try:
            tensors.update(load_file(str(f)))
        except (SafetensorError, OSError) as e:
            raise HFImportError(f"{f} is not a readable safetensors file: {e}") from None
    return config, tensors


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HFImportError(f"{path.parent} has no {path.name}; is it a transformers save_pretrained directory?")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HFImportError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise HFImportError(f"{path} must hold a JSON object")
    return data


# ----------------------------------------------------------------------------------------------
# Config


def common_fields(hf: dict[str, Any]) -> dict[str, Any]:
    """The FlurkaConfig fields every architecture reads the same way."""
    act = hf.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise HFImportError(f"hidden_act {act!r} is not supported; supported: {', '.join(ACTIVATIONS)}")
    return dict(attention="softmax", num_layers=int(hf["num_hidden_layers"]), hidden_size=int(hf["hidden_size"]),
                num_heads=int(hf["num_attention_heads"]), intermediate_size=int(hf["intermediate_size"]),
                hidden_act=ACTIVATIONS[act], layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)), dropout=0.0)


def text_fields(hf: dict[str, Any], position_offset: int = 0) -> dict[str, Any]:
    """The text encoder's fields: vocabulary, positions (after `position_offset` rows), token types."""
    type_rows = int(hf.get("type_vocab_size", 0))
    return dict(vocab_size=int(hf["vocab_size"]), max_seq_len=int(hf["max_position_embeddings"]) - position_offset,
                position_offset=position_offset, type_vocab_size=type_rows if type_rows > 1 else 0)


def num_labels(tensors: dict[str, np.ndarray], head: str) -> dict[str, Any]:
    """num_labels from the classifier's weight `head`."""
    if head not in tensors:
        raise HFImportError(f"no {head} in the checkpoint")
    return {"num_labels": int(tensors[head].shape[0])}


def square(value: Any, name: str) -> int:
    if isinstance(value, list | tuple):
        if len(set(value)) != 1:
            raise HFImportError(f"{name}={value} is not square; only square images and patches are supported")
        value = value[0]
    return int(value)


# ----------------------------------------------------------------------------------------------
# Tensors


def map_text_encoder(pool: TensorPool, p: str, config: FlurkaConfig, notes: list[str]) -> None:
    """Embeddings and every layer of a BERT-style encoder whose names start with `p` ("bert.", "roberta.", "")."""
    map_text_embeddings(pool, p, config, notes)
    for i in range(config.num_layers):
        map_text_layer(pool, p, i)


def map_text_embeddings(pool: TensorPool, p: str, config: FlurkaConfig, notes: list[str]) -> None:
    e = f"{p}embeddings."
    pool.copy(f"{e}word_embeddings.weight", "encoder.word_embeddings.weight")
    pos = pool.take(f"{e}position_embeddings.weight")
    sources = [f"{e}position_embeddings.weight"]
    if pool.has(f"{e}token_type_embeddings.weight"):
        types = pool.take(f"{e}token_type_embeddings.weight")
        if config.type_vocab_size:
            pool.put("encoder.token_type_embeddings.weight", types, f"{e}token_type_embeddings.weight")
        else:  # one type row (RoBERTa): every token adds it, so it is exact to fold it into the positions
            pos = pos + types[0]
            sources.append(f"{e}token_type_embeddings.weight")
            notes.append("the single token type embedding row is folded into the position embeddings "
                         "(the ONNX model has no token_type_ids input)")
    pool.put("encoder.position_embeddings", pos, *sources)
    norm(pool, f"{e}LayerNorm", "encoder.norm")
    for buf in BUFFERS:
        if pool.has(f"{p}{buf}"):
            pool.drop(f"{p}{buf}", "a buffer of constant ids, not a trained tensor")


def map_text_layer(pool: TensorPool, p: str, i: int) -> None:
    src, ours = f"{p}encoder.layer.{i}.", f"encoder.layers.{i}."
    for name in ("query", "key", "value"):
        dense(pool, f"{src}attention.self.{name}", f"{ours}attention.{name}")
    dense(pool, f"{src}attention.output.dense", f"{ours}attention.out")
    norm(pool, f"{src}attention.output.LayerNorm", f"{ours}norm1")
    dense(pool, f"{src}intermediate.dense", f"{ours}ffn.0")
    dense(pool, f"{src}output.dense", f"{ours}ffn.2")
    norm(pool, f"{src}output.LayerNorm", f"{ours}norm2")


def mlm_head(pool: TensorPool, config: FlurkaConfig, dense_name: str, norm_name: str, decoder: str, bias: str) -> None:
    dense(pool, dense_name, "transform.0")
    norm(pool, norm_name, "transform.2")
    bias_name = bias if pool.has(bias) else f"{decoder}.bias"
    if config.tie_word_embeddings:
        pool.put("decoder_bias", pool.take(bias_name), bias_name)
        if pool.has(f"{decoder}.weight"):  # older files store the tied matrix twice
            pool.drop(f"{decoder}.weight", "tied to the word embeddings (tie_word_embeddings=true)")
    else:
        pool.copy(f"{decoder}.weight", "decoder.weight")
        pool.put("decoder.bias", pool.take(bias_name), bias_name)
    if pool.has(f"{decoder}.bias"):  # the same vector saved under both names by older transformers
        pool.drop(f"{decoder}.bias", f"the same vector as {bias}")


def dense(pool: TensorPool, src: str, ours: str, notes: list[str] | None = None) -> None:
    pool.copy(f"{src}.weight", f"{ours}.weight")  # torch Linear on both sides: (out, in)
    if pool.has(f"{src}.bias"):
        pool.copy(f"{src}.bias", f"{ours}.bias")
    else:  # ViT with qkv_bias=false: a zero bias computes the same
        pool.put(f"{ours}.bias", np.zeros(pool.state[f"{ours}.weight"].shape[0], np.float32))
        if notes is not None and "zero" not in " ".join(notes):
            notes.append("q/k/v have no bias in the checkpoint (qkv_bias=false): zero biases are used")


def norm(pool: TensorPool, src: str, ours: str) -> None:
    for ours_t, names in (("weight", ("weight", "gamma")), ("bias", ("bias", "beta"))):
        name = next((f"{src}.{n}" for n in names if pool.has(f"{src}.{n}")), f"{src}.{names[0]}")
        pool.copy(name, f"{ours}.{ours_t}")
