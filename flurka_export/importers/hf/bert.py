"""BERT: BertModel (task encoder), BertForSequenceClassification (classify), BertForMaskedLM and
BertForPreTraining (mlm)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...models.config import FlurkaConfig
from ..common import TensorPool
from .common import Architecture, dense, map_text_encoder, mlm_head, num_labels, text_fields


def _mlm_fields(hf: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    return dict(text_fields(hf), tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)), mlm_act=None)


def _encoder(pool: TensorPool, config: FlurkaConfig, notes: list[str]) -> None:
    map_text_encoder(pool, "", config, notes)
    if pool.has("pooler.dense.weight"):
        for t in ("weight", "bias"):
            pool.drop(f"pooler.dense.{t}", "BertModel's pooler: the encoder task outputs last_hidden_state only")


def _classifier(pool: TensorPool, config: FlurkaConfig, notes: list[str]) -> None:
    map_text_encoder(pool, "bert.", config, notes)
    dense(pool, "bert.pooler.dense", "pooler.0")
    dense(pool, "classifier", "classifier")


def _masked_lm(pool: TensorPool, config: FlurkaConfig, notes: list[str]) -> None:
    map_text_encoder(pool, "bert.", config, notes)
    mlm_head(pool, config, "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
             "cls.predictions.decoder", "cls.predictions.bias")


def _pretraining(pool: TensorPool, config: FlurkaConfig, notes: list[str]) -> None:
    _masked_lm(pool, config, notes)
    why = "pre-training next-sentence head: not part of the masked-LM model"
    for name in ("bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.seq_relationship.weight",
                 "cls.seq_relationship.bias"):
        if pool.has(name):
            pool.drop(name, why)


ARCHITECTURES = {
    "BertModel": Architecture("bert", "encoder", lambda hf, t: text_fields(hf), _encoder),
    "BertForSequenceClassification": Architecture(
        "bert", "classify", lambda hf, t: dict(text_fields(hf), **num_labels(t, "classifier.weight")), _classifier),
    "BertForMaskedLM": Architecture("bert", "mlm", _mlm_fields, _masked_lm),
    "BertForPreTraining": Architecture("bert", "mlm", _mlm_fields, _pretraining),
}
