"""verify on a language model: a left-padded batch prefilled, then 16 decode steps with each runtime feeding its
own state back, plus one long prefill that must equal prefill + steps; each check can fail."""

import numpy as np
import onnx
import pytest

from flurka_export import export_onnx
from flurka_export.models import FlurkaConfig, build_model, save_pretrained
from flurka_export.models.specs import lm as lm_spec
from flurka_export.parity.verify import VerifyOptions, verify

STEPS = lm_spec.VERIFY_STEPS


@pytest.fixture(scope="module")
def lm_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vlm")
    config = FlurkaConfig(task="lm", attention="kernel-elu", num_layers=2, hidden_size=32, num_heads=2,
                          max_seq_len=48, vocab_size=64)
    save_pretrained(build_model(config), d / "ck")
    export_onnx(d / "ck", d / "lm.onnx")
    return d


def test_prefill_then_16_steps_pass(lm_files):
    report = verify(lm_files / "ck", lm_files / "lm.onnx", VerifyOptions(runtimes=("ort",)))
    assert report.passed, report.failures
    steps = {r["step"] for r in report.rows}
    assert {"prefill", *(f"step {i}" for i in range(1, STEPS + 1)), f"prefill T+{STEPS}"} <= steps
    assert f"prefill T+{STEPS} vs T + {STEPS} steps" in steps
    assert {r["output"] for r in report.rows} >= {"logits", "present.0.recurrent_state", "present.1.recurrent_state"}
    assert set(report.meta["worst_per_step"]["ort"]) >= {"prefill", f"step {STEPS}"}


def test_a_wrong_state_update_fails(lm_files, tmp_path):
    model = onnx.load(str(lm_files / "lm.onnx"))
    names = {"present.0.recurrent_state": "present.1.recurrent_state",
             "present.1.recurrent_state": "present.0.recurrent_state"}
    for node in model.graph.node:  # each layer hands back the other layer's state: the prefill's logits are right
        for i, out in enumerate(node.output):
            if out in names:
                node.output[i] = names[out]
    onnx.save(model, str(tmp_path / "bad.onnx"))
    report = verify(lm_files / "ck", tmp_path / "bad.onnx", VerifyOptions(runtimes=("ort",)))
    assert not report.passed
    bad = {(r["step"], r["output"]) for r in report.rows if not r["passed"]}
    assert ("prefill", "logits") not in bad and ("step 1", "logits") in bad


def test_steps_that_drift_from_one_long_prefill_fail(lm_files, monkeypatch):
    real = lm_spec._next_feed

    def shifted(tokens):
        step = real(tokens)

        def next_feed(i, feed, outputs):
            out = step(i, feed, outputs)
            return {**out, "position_ids": out["position_ids"] + 1}  # every runtime alike: only the self-check sees it
        return next_feed

    monkeypatch.setattr(lm_spec, "_next_feed", shifted)
    report = verify(lm_files / "ck", lm_files / "lm.onnx", VerifyOptions(runtimes=("ort",)))
    bad = {r["step"] for r in report.rows if not r["passed"]}
    assert not report.passed and bad == {f"prefill T+{STEPS} vs T + {STEPS} steps"}


def test_the_stepwise_logits_line_up_with_the_long_prefill():
    from flurka_export.models.specs.base import PrefillThenSteps

    drv = PrefillThenSteps("x", {}, 2, lambda i, f, o: {}, whole={})
    rng = np.random.default_rng(0)
    whole = rng.standard_normal((1, 5, 3))
    steps = [("prefill", {"logits": whole[:, :3]}), ("step 1", {"logits": whole[:, 3:4]}),
             ("step 2", {"logits": whole[:, 4:5]}), ("prefill T+2", {"logits": whole})]
    (_, expected, got), = drv.consistency(steps)
    assert np.array_equal(expected["logits"], got["logits"]) and got["logits"].shape == (1, 3, 3)
