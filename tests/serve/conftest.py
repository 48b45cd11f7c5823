"""Tiny exported models shared by the serve tests (module-scoped exports: a few seconds each)."""

import numpy as np
import pytest

from flurka_export.export import export_onnx
from flurka_export.models import build_model
from tests.helpers import tiny_config


def export_tiny(tmp_path_factory, attention: str, task: str = "mlm", **changes):
    config = tiny_config(attention=attention, task=task, num_layers=1, max_seq_len=64, vocab_size=128, **changes)
    return export_onnx(build_model(config), tmp_path_factory.mktemp(attention) / "model.onnx")


@pytest.fixture(scope="session")
def flurka_mlm(tmp_path_factory):
    return export_tiny(tmp_path_factory, "flurka-elu")


@pytest.fixture(scope="session")
def kernel_mlm(tmp_path_factory):
    return export_tiny(tmp_path_factory, "kernel-elu")


@pytest.fixture(scope="session")
def image_model(tmp_path_factory):
    return export_tiny(tmp_path_factory, "flurka-relu", task="image")


def text_request(rng: np.random.Generator, batch: int, n: int, pad: int = 0, vocab: int = 128):
    """Random ids [batch, n]; the last `pad` positions of row 0 are padding (attention_mask 0, id 0)."""
    ids = rng.integers(1, vocab, (batch, n), dtype=np.int64)
    mask = np.ones_like(ids)
    if pad:
        ids[0, n - pad:] = 0
        mask[0, n - pad:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="session")
def kernel_lm(tmp_path_factory):
    """A tiny causal lm (constant-size recurrent state), context 64, vocabulary 128."""
    return export_tiny(tmp_path_factory, "kernel-elu", task="lm")


@pytest.fixture(scope="session")
def softmax_lm(tmp_path_factory):
    """A tiny causal lm with a KV cache (grows by one row per token)."""
    return export_tiny(tmp_path_factory, "softmax", task="lm")
