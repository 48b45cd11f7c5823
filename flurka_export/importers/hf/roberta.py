"""RoBERTa: RobertaForSequenceClassification (classify) and RobertaForMaskedLM (mlm). Positions start at
padding_idx + 1; the single token type row is folded into the positions."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...models.config import FlurkaConfig
from ..common import TensorPool
from .common import Architecture, dense, map_text_encoder, mlm_head, num_labels, text_fields


def _text(hf: dict[str, Any]) -> dict[str, Any]:
    return text_fields(hf, position_offset=int(hf["pad_token_id"]) + 1)


def _classifier(pool: TensorPool, config: FlurkaConfig, notes: list[str]) -> None:
    map_text_encoder(pool, "roberta.", config, notes)
    dense(pool, "classifier.dense", "pooler.0")  # RobertaClassificationHead: dense + tanh on <s>, then out_proj
    dense(pool, "classifier.out_proj", "classifier")


def _masked_lm(pool: TensorPool, config: FlurkaConfig, notes: list[str]) -> None:
    map_text_encoder(pool, "roberta.", config, notes)
    mlm_head(pool, config, "lm_head.dense", "lm_head.layer_norm", "lm_head.decoder", "lm_head.bias")


def _mlm_fields(hf: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    # RobertaLMHead: exact gelu
    return dict(_text(hf), tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)), mlm_act="gelu")


ARCHITECTURES = {
    "RobertaForSequenceClassification": Architecture(
        "roberta", "classify", lambda hf, t: dict(_text(hf), **num_labels(t, "classifier.out_proj.weight")),
        _classifier),
    "RobertaForMaskedLM": Architecture("roberta", "mlm", _mlm_fields, _masked_lm),
}
