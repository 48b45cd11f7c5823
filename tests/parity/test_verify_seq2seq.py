"""verify on an exported seq2seq directory: the encoder outputs, the cross states, the first decoder step and
VERIFY_STEPS steps with past, one long first step against the steps, and beam search's tokens, PyTorch against
ONNX Runtime, for every cross-attention kind and fp16; each check can fail."""

import numpy as np
import onnx
import pytest

from flurka_export import export_onnx
from flurka_export.models import FlurkaConfig, build_model, save_pretrained
from flurka_export.models.specs import seq2seq as s2s_spec
from flurka_export.parity.agreement import compare_output
from flurka_export.parity.verify import VerifyOptions, verify

STEPS = s2s_spec.VERIFY_STEPS
SHAPES = "1x1,3x9,2x24"  # one token, a padded batch, N = N_max


def build(tmp, cross, dec="kernel-elu", enc="flurka-elu", dtype="fp32"):
    config = FlurkaConfig(task="seq2seq", attention=enc, cross_attention=cross, decoder_attention=dec, num_layers=2,
                          hidden_size=32, num_heads=2, max_seq_len=24, low_rank=8, vocab_size=48, num_features=8)
    save_pretrained(build_model(config), tmp / "ck")
    export_onnx(tmp / "ck", tmp / "out", dtype=dtype)
    return tmp


@pytest.fixture(scope="module")
def flurka(tmp_path_factory):
    return build(tmp_path_factory.mktemp("v2s"), "flurka-elu")


def run(d, out="out", **kw):
    return verify(d / "ck", d / out, VerifyOptions(runtimes=("ort",), shapes=SHAPES, **kw))


def test_every_part_is_compared_and_passes(flurka):
    report = run(flurka)
    assert report.passed, report.failures
    steps = {r["step"] for r in report.rows}
    assert {"encoder", "cross states", "decoder", *(f"step {i}" for i in range(1, STEPS + 1)),
            f"decoder T+{STEPS}", f"decoder T+{STEPS} vs T + {STEPS} steps", "beam 3"} == steps
    outputs = {(r["step"], r["output"]) for r in report.rows}
    assert {("encoder", "last_hidden_state"), ("cross states", "present.0.encoder.state"),
            ("cross states", "present.1.encoder.state"), ("step 1", "logits"), ("beam 3", "beam_tokens")} <= outputs
    assert {r["shape"] for r in report.rows} == {"1x1+8", "3x9+8", "2x24+8", "1x1", "3x9", "2x24"}
    assert report.summary == "torch vs ort, ort merged on 3 shapes"
    for runtime in ("ort", "ort merged"):
        assert {r["step"] for r in report.rows if r["runtime"] == runtime} == steps


@pytest.mark.parametrize("cross,dec", [("linformer", "kernel-elu"), ("kernel-favor", "kernel-elu"),
                                       ("kernel-dpfp", "kernel-elu"), ("softmax", "softmax")])
def test_every_cross_kind_passes(tmp_path, cross, dec):
    report = run(build(tmp_path, cross, dec))
    assert report.passed, report.failures
    assert any(r["step"] == "cross states" for r in report.rows)


def test_fp16_export_passes_with_fp16_tolerances(tmp_path):
    report = run(build(tmp_path, "flurka-elu", dtype="fp16"))
    assert report.passed, report.failures
    assert report.meta["dtype"] == "fp16" and report.meta["atol"] == 5e-2


def _swap_outputs(path, a, b):
    model = onnx.load(str(path))
    for node in model.graph.node:
        for i, out in enumerate(node.output):
            node.output[i] = {a: b, b: a}.get(out, out)
    onnx.save(model, str(path))


def test_swapped_cross_states_fail_there_and_not_in_the_encoder(flurka, tmp_path):
    import shutil

    shutil.copytree(flurka / "out", tmp_path / "bad")
    _swap_outputs(tmp_path / "bad" / "decoder_model.onnx", "present.0.encoder.state", "present.1.encoder.state")
    report = run(flurka, out=str(tmp_path / "bad"))
    assert not report.passed
    bad = {(r["step"], r["output"]) for r in report.rows if not r["passed"]}
    assert ("cross states", "present.0.encoder.state") in bad and ("step 1", "logits") in bad
    assert not any(step == "encoder" for step, _ in bad)


def test_a_with_past_file_that_drops_its_state_fails_the_steps(flurka, tmp_path):
    import shutil

    shutil.copytree(flurka / "out", tmp_path / "bad")
    _swap_outputs(tmp_path / "bad" / "decoder_with_past_model.onnx", "present.0.decoder.recurrent_state",
                  "present.1.decoder.recurrent_state")
    report = run(flurka, out=str(tmp_path / "bad"))
    bad = {(r["step"], r["output"]) for r in report.rows if not r["passed"]}
    assert ("step 1", "logits") not in bad and ("step 2", "logits") in bad
    assert not any(step in ("encoder", "cross states", "decoder") for step, _ in bad)


def test_a_merged_file_with_its_branches_swapped_fails_only_there(flurka, tmp_path):
    import shutil

    shutil.copytree(flurka / "out", tmp_path / "bad")
    path = tmp_path / "bad" / "decoder_model_merged.onnx"
    model = onnx.load(str(path))
    branch = next(n for n in model.graph.node if n.op_type == "If")
    then_b, else_b = (next(a for a in branch.attribute if a.name == k) for k in ("then_branch", "else_branch"))
    then_g = onnx.GraphProto()
    then_g.CopyFrom(then_b.g)
    then_b.g.CopyFrom(else_b.g)
    else_b.g.CopyFrom(then_g)
    onnx.save(model, str(path))
    report = run(flurka, out=str(tmp_path / "bad"))
    assert not report.passed
    assert {r["runtime"] for r in report.rows if not r["passed"]} == {"ort merged"}


def test_token_ids_are_compared_exactly():
    same = compare_output("beam_tokens", np.array([[3, 4, -1]]), np.array([[3, 4, -1]]), quantized=True, atol=10,
                          rtol=1)
    other = compare_output("beam_tokens", np.array([[3, 4, -1]]), np.array([[3, 5, -1]]), quantized=True, atol=10,
                           rtol=1)
    assert same.passed and not other.passed


def test_cli_verify_directory(flurka, capsys):
    from flurka_export.cli.main import main

    assert main(["verify", str(flurka / "ck"), str(flurka / "out"), "--shapes", "2x5"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("RESULT: PASS (torch vs ort, ort merged on 1 shape")
    assert main(["verify", str(flurka / "ck"), str(flurka / "out"), "--per-layer"]) == 1
    assert "not available for an export directory" in capsys.readouterr().err


def test_a_directory_for_a_one_file_family_is_one_line(flurka, tmp_path, capsys):
    from flurka_export.cli.main import main

    lm = FlurkaConfig(task="lm", attention="kernel-elu", num_layers=1, hidden_size=32, num_heads=2, max_seq_len=16,
                      low_rank=8, vocab_size=40)
    save_pretrained(build_model(lm), tmp_path / "lm")
    assert main(["verify", str(tmp_path / "lm"), str(flurka / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("is a directory, but a lm model exports to one ONNX file: pass that .onnx file")
    assert len(err.splitlines()) == 1
