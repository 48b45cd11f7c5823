"""The lm family exported: one file for prefill and decode, states fed back, the same logits and greedy tokens
as PyTorch; the context limit refused by name; inspect shows the state."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from flurka_export import export_onnx
from flurka_export.export.inspect import inspect_model
from flurka_export.generate import OrtDecoder, SamplingOptions, TorchDecoder, generate
from flurka_export.models import FlurkaConfig, build_model
from flurka_export.models.lm_io import state_bytes

CASES = [("kernel-elu", "ort"), ("kernel-favor-causal", "onnx"), ("softmax", "ort")]


@pytest.fixture(scope="module", params=CASES, ids=["-".join(c) for c in CASES])
def exported(request, tmp_path_factory):
    attention, linear_attention = request.param
    torch.manual_seed(0)
    config = FlurkaConfig(task="lm", attention=attention, num_layers=2, hidden_size=32, num_heads=2,
                          max_seq_len=40, vocab_size=64, num_features=8)
    model = build_model(config)
    path = export_onnx(model, tmp_path_factory.mktemp("lm") / "lm.onnx", linear_attention=linear_attention)
    return model, config, path


def test_prefill_then_steps_match_pytorch(exported):
    model, config, path = exported
    torch_dec, ort_dec = TorchDecoder(model), OrtDecoder(path, config)
    ids = np.array([[0, 0, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6]], np.int64)  # row 0 left-padded
    mask = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], np.int64)
    np.testing.assert_allclose(ort_dec.prefill(ids, mask), torch_dec.prefill(ids, mask), atol=1e-4, rtol=1e-4)
    for step in range(5):
        tokens = np.array([10 + step, 20 + step])
        np.testing.assert_allclose(ort_dec.step(tokens), torch_dec.step(tokens), atol=1e-4, rtol=1e-4)
    for name, value in ort_dec.past.items():  # the states themselves, not only the logits
        i, kind = name.split(".")[1:]
        theirs = torch_dec.past[int(i)][0 if kind in ("key", "recurrent_state") else 1].numpy()
        np.testing.assert_allclose(value, theirs, atol=1e-4, rtol=1e-4)


def test_greedy_tokens_equal_pytorch(exported):
    model, config, path = exported
    prompts = [[1, 2, 3], [9, 8, 7, 6, 5, 4, 3]]
    opts = SamplingOptions(max_new_tokens=12)
    assert generate(OrtDecoder(path, config), prompts, opts) == generate(TorchDecoder(model), prompts, opts)


def test_context_beyond_max_seq_len_is_refused_by_name(exported):
    _, config, path = exported
    dec = OrtDecoder(path, config)
    ids = np.ones((1, 41), np.int64)
    with pytest.raises(Exception, match="max_seq_len=40"):
        dec.prefill(ids, np.ones_like(ids))


def test_inspect_shows_the_state(exported):
    _, config, path = exported
    st = inspect_model(path)["state"]
    assert st["inputs"] == config.num_layers * (2 if config.attention == "softmax" else 1)
    if config.attention == "softmax":
        assert st["bytes_per_sequence"] == 0 and st["bytes_per_context_token"] == state_bytes(config, 1)
    else:
        assert st["bytes_per_sequence"] == state_bytes(config, 1) == state_bytes(config, 10_000)
        assert sum(st["linear_attention_nodes"].values()) == config.num_layers


def test_state_inputs_have_constant_shape_for_kernel_kinds(exported):
    _, config, path = exported
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    past = [i for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
    for i in past:
        dims = i.shape[1:]
        assert all(isinstance(d, int) for d in dims) == (config.attention != "softmax"), (i.name, i.shape)
