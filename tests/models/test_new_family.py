"""A family is one model module plus its spec: a toy `regress` family (a scalar head on the text encoder),
declared only here, goes through new -> export -> verify, TensorRT profiles and serving facts with no other
edit to the package. A generating family's verify driver (prefill, then steps fed their own states) is
checked on a toy recurrence in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from flurka_export.cli import main
from flurka_export.models import FlurkaConfig, build_model, specs
from flurka_export.models.exported import ExportedModel
from flurka_export.models.families import TextEncoder
from flurka_export.models.specs import BATCH, Head, PrefillThenSteps, SingleFeed
from flurka_export.models.specs.text import TextSpec
from flurka_export.parity.comparator import compare_results, run_all, worst_per_step


class Regressor(nn.Module):
    """The text encoder and a scalar score from the mean of the real tokens."""

    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TextEncoder(config)
        self.score = nn.Linear(config.hidden_size, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder(input_ids, attention_mask)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.score((h * m).sum(1) / m.sum(1).clamp(min=1))


class RegressSpec(TextSpec):
    family = "regress"
    heads = {"regress": Head("regress", Regressor, "score", (BATCH, 1))}


@pytest.fixture
def regress_family():
    unregister = specs.register(RegressSpec())
    yield
    unregister()


def test_new_export_verify_on_a_family_declared_in_the_test(regress_family, tmp_path, capsys):
    ckpt, onnx_path = tmp_path / "ckpt", tmp_path / "m.onnx"
    assert main(["new", "--task", "regress", "--attention", "flurka-elu", "-o", str(ckpt)]) == 0
    assert main(["export", str(ckpt), "-o", str(onnx_path)]) == 0
    exported = ExportedModel.read(onnx_path)
    assert (exported.input_names, exported.output_names) == (["input_ids", "attention_mask"], ["score"])
    assert exported.spec.family == "regress" and exported.config.task == "regress"
    assert main(["verify", str(ckpt), str(onnx_path), "--runtimes", "ort", "--shapes", "1x3,3x40"]) == 0
    out = capsys.readouterr().out
    assert "RESULT: PASS" in out and "score" in out

    from flurka_export.serve.repository import model_facts
    from flurka_export.trt.profiles import default_profiles

    assert [p.name for p in default_profiles(exported.proto)] == ["input_ids", "attention_mask"]
    facts = model_facts(exported)
    assert facts.sequence_inputs == ("input_ids", "attention_mask") and facts.per_token_outputs == ()


def test_a_task_is_declared_once(regress_family):
    with pytest.raises(ValueError, match="task 'regress' is already declared by the regress family"):
        specs.register(RegressSpec())
    assert isinstance(build_model(FlurkaConfig(task="regress", max_seq_len=32, low_rank=8)), Regressor)


def test_unregistered_family_is_refused():
    with pytest.raises(ValueError, match="task='regress' is not allowed"):
        FlurkaConfig(task="regress")


def _toy_step(weight: float):
    """A 'runtime' of a recurrent toy model: state' = state * 0.5 + x; output = state' * weight."""
    def run(feed):
        state = feed.get("past_key_values.0.recurrent_state", np.zeros((1, 2), np.float32))
        new = state * 0.5 + feed["x"].sum(1, keepdims=True)
        return {"logits": new * weight, "present.0.recurrent_state": new}
    return run


def test_generating_driver_feeds_each_runtime_its_own_state_and_compares_per_step():
    case = PrefillThenSteps("1x3", {"x": np.ones((1, 3), np.float32)}, steps=2,
                            next_feed=lambda i, feed, out: {"x": np.full((1, 1), float(i), np.float32)})
    ref, results = run_all(_toy_step(1.0), {"good": _toy_step(1.0), "bad": _toy_step(1.001)}, [case])
    assert [step for step, _ in ref["1x3"]] == ["prefill", "step 1", "step 2"]
    np.testing.assert_allclose(ref["1x3"][2][1]["present.0.recurrent_state"], 3.25 * np.ones((1, 2)))
    rows = compare_results(ref, results, quantized=False, atol=1e-4, rtol=1e-6, tolerances_given=True)
    assert {(r["runtime"], r["step"]) for r in rows if not r["passed"]} == {
        ("bad", "prefill"), ("bad", "step 1"), ("bad", "step 2")}
    worst = worst_per_step(rows)
    assert list(worst["bad"]) == ["prefill", "step 1", "step 2"] and worst["good"]["step 2"] == 0.0


def test_encoder_cases_are_one_feed_and_one_step():
    case = SingleFeed("2x4", {"x": np.ones((2, 4), np.float32)})
    assert [step for step, _ in case.drive(lambda feed: {"y": feed["x"]})] == ["forward"]
