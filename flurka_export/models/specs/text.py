"""The text encoder family (BERT-style): classification, masked-LM and bare-encoder heads.

Inputs `input_ids` and `attention_mask` int64 [batch, sequence], plus `token_type_ids` when the config has
token type embeddings; sequence 1..N_max, right padding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..families import FlurkaEncoder, FlurkaForMaskedLM, FlurkaForSequenceClassification
from .base import BATCH, SEQUENCE, FamilySpec, Feed, Head, IOTensor, Shape

if TYPE_CHECKING:
    from ..config import FlurkaConfig

TOKENS = (BATCH, SEQUENCE)


class TextSpec(FamilySpec):
    family = "text"
    order = 0
    heads = {
        "classify": Head("classify", FlurkaForSequenceClassification),
        "mlm": Head("mlm", FlurkaForMaskedLM, "logits", (BATCH, SEQUENCE, "vocab")),
        "encoder": Head("encoder", FlurkaEncoder, "last_hidden_state", (BATCH, SEQUENCE, "hidden")),
    }
    token_input, mask_input = "input_ids", "attention_mask"

    def inputs(self, config: FlurkaConfig) -> list[IOTensor]:
        names = ["input_ids", "attention_mask"]
        if config.type_vocab_size:  # models with token type embeddings take token_type_ids as a third input
            names.append("token_type_ids")
        return [IOTensor(n, "int64", TOKENS) for n in names]

    def make_feed(self, config: FlurkaConfig, shape: Shape, seed: int = 0, float_dtype: str = "float32",
                  pad: bool = True) -> Feed:
        """Token ids inside the vocabulary. Batches of more than one row get right padding: row i keeps a
        different number of real tokens (at least one)."""
        rng = np.random.default_rng(seed)
        b, n = shape
        ids = rng.integers(0, config.vocab_size, size=(b, n), dtype=np.int64)
        mask = np.ones((b, n), dtype=np.int64)
        if pad and b > 1 and n > 1:
            for row in range(1, b):
                real = max(1, n - (row * n) // (b + 1))
                mask[row, real:] = 0
        feed = {"input_ids": ids, "attention_mask": mask}
        if config.type_vocab_size:  # segment A then segment B, as in sentence-pair inputs
            types = np.zeros((b, n), dtype=np.int64)
            types[:, (n + 1) // 2:] = min(1, config.type_vocab_size - 1)
            feed["token_type_ids"] = types * mask
        return feed

    def padding_invariant(self, config: FlurkaConfig) -> bool:
        """Padding never changes the outputs of the softmax, linformer and flurka-* kinds (padded keys are masked
        before attention and the low-rank projection); kernel-* kinds attend over every key position, and
        checkpoints that ignore the mask change with padding."""
        return not config.attention.startswith("kernel-") and config.mask_keys_in_attention


SPEC = TextSpec()
