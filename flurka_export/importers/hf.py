"""Import a Hugging Face transformers checkpoint (a `save_pretrained` directory) into a flurka-export one.

Read here without transformers: config.json and model.safetensors (or its sharded index). Pickled
weights (pytorch_model.bin) are refused: we never unpickle. Supported architectures, all mapped onto
our families with attention kind `softmax`, which computes what BERT/RoBERTa/ViT self-attention
computes; `convert-attention --to flurka-elu` then starts the paper's up-training from it:

    BertModel (task encoder), BertForSequenceClassification, RobertaForSequenceClassification (classify),
    BertForMaskedLM, BertForPreTraining, RobertaForMaskedLM (mlm), ViTForImageClassification (image).

Every tensor is mapped, or dropped by name with the reason (BertModel's pooler, the pre-training
next-sentence head), or named as an error.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..models.config import FlurkaConfig
from ..models.families import build_model
from .common import ImportReport, TensorPool, finish


class HFImportError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Architecture:
    model_type: str  # config.json's model_type
    task: str  # our family
    prefix: str  # the base model's name inside the state dict ("" for BertModel)
    head: str  # which head mapper


ARCHITECTURES: dict[str, Architecture] = {
    "BertModel": Architecture("bert", "encoder", "", "none"),
    "BertForSequenceClassification": Architecture("bert", "classify", "bert.", "bert_cls"),
    "BertForMaskedLM": Architecture("bert", "mlm", "bert.", "bert_mlm"),
    "BertForPreTraining": Architecture("bert", "mlm", "bert.", "bert_pretraining"),
    "RobertaForSequenceClassification": Architecture("roberta", "classify", "roberta.", "roberta_cls"),
    "RobertaForMaskedLM": Architecture("roberta", "mlm", "roberta.", "roberta_mlm"),
    "ViTForImageClassification": Architecture("vit", "image", "vit.", "vit_cls"),
}
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


def architecture_of(hf: dict[str, Any], source: str) -> tuple[str, Architecture]:
    names = hf.get("architectures") or []
    supported = ", ".join(ARCHITECTURES)
    if len(names) != 1 or names[0] not in ARCHITECTURES:
        raise HFImportError(f"{source}: architectures {names} is not supported; supported: {supported}")
    arch = ARCHITECTURES[names[0]]
    if hf.get("model_type") != arch.model_type:
        raise HFImportError(f"{source}: model_type {hf.get('model_type')!r} does not match {names[0]}")
    for key, ok in (("is_decoder", False), ("add_cross_attention", False), ("position_embedding_type", "absolute")):
        if hf.get(key, ok) != ok:
            raise HFImportError(f"{source}: {key}={hf[key]!r} is not supported (only {key}={ok!r})")
    return names[0], arch


# ----------------------------------------------------------------------------------------------
# Config


def hf_config_fields(hf: dict[str, Any], arch: Architecture, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    """FlurkaConfig fields for the HF config (shapes from the tensors where config.json may be silent)."""
    act = hf.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise HFImportError(f"hidden_act {act!r} is not supported; supported: {', '.join(ACTIVATIONS)}")
    d, heads = int(hf["hidden_size"]), int(hf["num_attention_heads"])
    fields: dict[str, Any] = dict(
        task=arch.task, attention="softmax", num_layers=int(hf["num_hidden_layers"]), hidden_size=d,
        num_heads=heads, intermediate_size=int(hf["intermediate_size"]), hidden_act=ACTIVATIONS[act],
        layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)), dropout=0.0,
    )
    if arch.task == "image":
        size, patch = _square(hf["image_size"], "image_size"), _square(hf["patch_size"], "patch_size")
        n = (size // patch) ** 2 + 1
        fields.update(image_size=size, patch_size=patch, num_channels=int(hf.get("num_channels", 3)),
                      max_seq_len=n, pre_norm=True)
    else:
        offset = int(hf["pad_token_id"]) + 1 if arch.model_type == "roberta" else 0
        type_rows = int(hf.get("type_vocab_size", 0))
        fields.update(vocab_size=int(hf["vocab_size"]), max_seq_len=int(hf["max_position_embeddings"]) - offset,
                      position_offset=offset, type_vocab_size=type_rows if type_rows > 1 else 0)
    if arch.task in ("classify", "image"):
        head = {"bert_cls": "classifier.weight", "roberta_cls": "classifier.out_proj.weight",
                "vit_cls": "classifier.weight"}[arch.head]
        if head not in tensors:
            raise HFImportError(f"no {head} in the checkpoint")
        fields["num_labels"] = int(tensors[head].shape[0])
    if arch.task == "mlm":
        fields.update(tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)),
                      mlm_act="gelu" if arch.model_type == "roberta" else None)  # RobertaLMHead: exact gelu
    fields["low_rank"] = min(FlurkaConfig.low_rank, fields["max_seq_len"])  # unused by softmax; see convert-attention
    return fields


def _square(value: Any, name: str) -> int:
    if isinstance(value, list | tuple):
        if len(set(value)) != 1:
            raise HFImportError(f"{name}={value} is not square; only square images and patches are supported")
        value = value[0]
    return int(value)


# ----------------------------------------------------------------------------------------------
# Tensors


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
    _norm(pool, f"{e}LayerNorm", "encoder.norm")
    for buf in BUFFERS:
        if pool.has(f"{p}{buf}"):
            pool.drop(f"{p}{buf}", "a buffer of constant ids, not a trained tensor")


def map_text_layer(pool: TensorPool, p: str, i: int) -> None:
    src, ours = f"{p}encoder.layer.{i}.", f"encoder.layers.{i}."
    for name in ("query", "key", "value"):
        _dense(pool, f"{src}attention.self.{name}", f"{ours}attention.{name}")
    _dense(pool, f"{src}attention.output.dense", f"{ours}attention.out")
    _norm(pool, f"{src}attention.output.LayerNorm", f"{ours}norm1")
    _dense(pool, f"{src}intermediate.dense", f"{ours}ffn.0")
    _dense(pool, f"{src}output.dense", f"{ours}ffn.2")
    _norm(pool, f"{src}output.LayerNorm", f"{ours}norm2")


def map_vit(pool: TensorPool, config: FlurkaConfig, notes: list[str]) -> None:
    pool.copy("vit.embeddings.cls_token", "cls_token")
    pool.copy("vit.embeddings.position_embeddings", "position_embeddings")
    pool.copy("vit.embeddings.patch_embeddings.projection.weight", "patch_embed.weight")
    pool.copy("vit.embeddings.patch_embeddings.projection.bias", "patch_embed.bias")
    if pool.has("vit.embeddings.mask_token"):
        pool.drop("vit.embeddings.mask_token", "used only for masked image modelling, not for classification")
    for i in range(config.num_layers):
        src, ours = f"vit.encoder.layer.{i}.", f"layers.{i}."
        for name in ("query", "key", "value"):
            _dense(pool, f"{src}attention.attention.{name}", f"{ours}attention.{name}", notes)
        _dense(pool, f"{src}attention.output.dense", f"{ours}attention.out")
        _norm(pool, f"{src}layernorm_before", f"{ours}norm1")
        _dense(pool, f"{src}intermediate.dense", f"{ours}ffn.0")
        _dense(pool, f"{src}output.dense", f"{ours}ffn.2")
        _norm(pool, f"{src}layernorm_after", f"{ours}norm2")
    _norm(pool, "vit.layernorm", "norm")
    _dense(pool, "classifier", "head")


def map_head(pool: TensorPool, arch: Architecture, config: FlurkaConfig, notes: list[str]) -> None:
    p = arch.prefix
    if arch.head == "none" and pool.has("pooler.dense.weight"):
        for t in ("weight", "bias"):
            pool.drop(f"pooler.dense.{t}", "BertModel's pooler: the encoder task outputs last_hidden_state only")
    elif arch.head == "bert_cls":
        _dense(pool, f"{p}pooler.dense", "pooler.0")
        _dense(pool, "classifier", "classifier")
    elif arch.head == "roberta_cls":  # RobertaClassificationHead: dense + tanh on <s>, then out_proj
        _dense(pool, "classifier.dense", "pooler.0")
        _dense(pool, "classifier.out_proj", "classifier")
    elif arch.head in ("bert_mlm", "bert_pretraining"):
        _mlm_head(pool, config, "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                  "cls.predictions.decoder", "cls.predictions.bias")
        if arch.head == "bert_pretraining":
            why = "pre-training next-sentence head: not part of the masked-LM model"
            for name in (f"{p}pooler.dense.weight", f"{p}pooler.dense.bias", "cls.seq_relationship.weight",
                         "cls.seq_relationship.bias"):
                if pool.has(name):
                    pool.drop(name, why)
    elif arch.head == "roberta_mlm":
        _mlm_head(pool, config, "lm_head.dense", "lm_head.layer_norm", "lm_head.decoder", "lm_head.bias")


def _mlm_head(pool: TensorPool, config: FlurkaConfig, dense: str, norm: str, decoder: str, bias: str) -> None:
    _dense(pool, dense, "transform.0")
    _norm(pool, norm, "transform.2")
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


def _dense(pool: TensorPool, src: str, ours: str, notes: list[str] | None = None) -> None:
    pool.copy(f"{src}.weight", f"{ours}.weight")  # torch Linear on both sides: (out, in)
    if pool.has(f"{src}.bias"):
        pool.copy(f"{src}.bias", f"{ours}.bias")
    else:  # ViT with qkv_bias=false: a zero bias computes the same
        pool.put(f"{ours}.bias", np.zeros(pool.state[f"{ours}.weight"].shape[0], np.float32))
        if notes is not None and "zero" not in " ".join(notes):
            notes.append("q/k/v have no bias in the checkpoint (qkv_bias=false): zero biases are used")


def _norm(pool: TensorPool, src: str, ours: str) -> None:
    for ours_t, names in (("weight", ("weight", "gamma")), ("bias", ("bias", "beta"))):
        name = next((f"{src}.{n}" for n in names if pool.has(f"{src}.{n}")), f"{src}.{names[0]}")
        pool.copy(name, f"{ours}.{ours_t}")


# ----------------------------------------------------------------------------------------------
# Entry points


def import_hf_model(hf: dict[str, Any], tensors: dict[str, np.ndarray], *, source: str = "config.json",
                    allow_unmapped: bool = False) -> tuple[nn.Module, ImportReport]:
    """Our model (attention softmax) with every tensor of a transformers checkpoint in its place."""
    name, arch = architecture_of(hf, source)
    try:
        fields = hf_config_fields(hf, arch, tensors)
    except KeyError as e:
        raise HFImportError(f"{source} has no {e.args[0]!r}, which {name} needs") from None
    except (TypeError, ValueError) as e:
        raise HFImportError(f"{source}: a value has the wrong type ({e})") from None
    config = FlurkaConfig(**fields)
    model = build_model(config)
    pool = TensorPool(tensors, HFImportError)
    notes = [f"{name} -> task {config.task}; attention softmax (exactly BERT/RoBERTa/ViT self-attention)"]
    if arch.task == "image":
        map_vit(pool, config, notes)
    else:
        map_text_embeddings(pool, arch.prefix, config, notes)
        for i in range(config.num_layers):
            map_text_layer(pool, arch.prefix, i)
    map_head(pool, arch, config, notes)
    if config.position_offset:
        notes.append(f"positions start at row {config.position_offset} (RoBERTa: padding_idx + 1); "
                     f"N_max = {config.max_seq_len}")
    unmapped = finish(model, pool, what=f"a {config.task} model", allow_unmapped=allow_unmapped, error=HFImportError)
    report = ImportReport(config=config, source="hf", mapped=pool.mapped, dropped=pool.dropped,
                          unmapped=unmapped, notes=notes)
    return model.eval(), report


def import_hf_checkpoint(directory: str | Path, output: str | Path | None = None, *,
                         allow_unmapped: bool = False) -> tuple[nn.Module, ImportReport]:
    """Read a save_pretrained directory, map it, and save_pretrained our checkpoint to `output` when given."""
    from ..models import save_pretrained

    hf, tensors = read_hf_dir(directory)
    model, report = import_hf_model(hf, tensors, source=str(Path(directory) / "config.json"),
                                    allow_unmapped=allow_unmapped)
    if output is not None:
        save_pretrained(model, output)
    return model, report
