"""Export of what real checkpoints need: token_type_ids input, gelu_tanh as ONNX Gelu, the bare encoder."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from flurka_export import export_onnx
from flurka_export.models import build_model
from flurka_export.parity import make_inputs
from flurka_export.runtimes.ort_runner import make_session
from tests.helpers import tiny_config

REAL = dict(type_vocab_size=2, hidden_act="gelu_tanh", position_offset=2, mask_keys_in_attention=False)


@pytest.mark.parametrize("task,attention", [("classify", "flurka-elu"), ("mlm", "softmax"), ("encoder", "flurka-rfa")])
def test_token_types_and_gelu_tanh_in_ort(tmp_path, task, attention):
    config = tiny_config(task=task, attention=attention, tie_word_embeddings=task == "mlm", **REAL)
    model = build_model(config)
    path = export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(path)
    assert [i.name for i in proto.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert proto.graph.output[0].name == ("last_hidden_state" if task == "encoder" else "logits")
    gelus = [n for n in proto.graph.node if n.op_type == "Gelu"]
    assert gelus and all(a.s == b"tanh" for n in gelus for a in n.attribute if a.name == "approximate")
    sess = make_session(path, ["CPUExecutionProvider"])
    for i, shape in enumerate([(1, 1), (3, 37), (2, 128)]):
        feed = make_inputs(config, shape, seed=i)
        assert feed["token_type_ids"].max() == (1 if shape[1] > 1 else 0)
        with torch.no_grad():
            want = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).numpy()
        err = np.abs(sess.run(None, feed)[0] - want).max()  # fp32: within 1e-5 of the largest logit
        assert err <= 1e-5 * max(1.0, np.abs(want).max()), f"shape {shape}: max abs error {err}"


def test_models_without_token_types_keep_two_inputs(tmp_path):
    path = export_onnx(build_model(tiny_config(task="encoder")), tmp_path / "m.onnx")
    assert [i.name for i in onnx.load(path).graph.input] == ["input_ids", "attention_mask"]
