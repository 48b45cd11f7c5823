"""seq2seq exported in optimum's non-merged layout: encoder_model.onnx, decoder_model.onnx (first step, computes the
cross states from the source) and decoder_with_past_model.onnx; greedy and beam tokens in ONNX Runtime equal
PyTorch's for FLuRKA cross-attention and the softmax baseline over a padded source batch."""

import pytest
import torch

from flurka_export import export_onnx
from flurka_export.generate import BeamOptions, SamplingOptions, beam_search, generate
from flurka_export.generate.seq2seq_decoder import OrtSeq2SeqDecoder, Seq2SeqTorchDecoder
from flurka_export.models import FlurkaConfig, build_model, save_pretrained
from flurka_export.utils import OutputError

KINDS = [("flurka-elu", None, "kernel-elu"), ("softmax", "softmax", "softmax")]
PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [3, 4, 30, 31, 32]]


def s2s(enc, cross, dec):
    torch.manual_seed(0)
    return build_model(FlurkaConfig(task="seq2seq", attention=enc, cross_attention=cross, decoder_attention=dec,
                                    num_layers=2, hidden_size=32, num_heads=2, max_seq_len=40, low_rank=8,
                                    vocab_size=50, num_features=8)).eval()


@pytest.fixture(scope="module", params=KINDS, ids=lambda k: k[1] or k[0])
def exported(request, tmp_path_factory):
    model = s2s(*request.param)
    out = export_onnx(model, tmp_path_factory.mktemp("s2s") / "out")
    return model, out


def test_directory_layout_and_names(exported):
    import onnx

    _, out = exported
    assert sorted(p.name for p in out.iterdir()) == ["decoder_model.onnx", "decoder_model_merged.onnx",
                                                    "decoder_with_past_model.onnx", "encoder_model.onnx"]
    first = onnx.load(out / "decoder_model.onnx", load_external_data=False)
    later = onnx.load(out / "decoder_with_past_model.onnx", load_external_data=False)
    assert [i.name for i in first.graph.input][:4] == ["input_ids", "encoder_hidden_states",
                                                       "encoder_attention_mask", "decoder_attention_mask"]
    assert any(o.name.startswith("present.1.encoder.") for o in first.graph.output)
    later_in = [i.name for i in later.graph.input]
    assert "encoder_hidden_states" not in later_in and "past_key_values.0.encoder." in " ".join(later_in)


@pytest.mark.parametrize("merged", [True, False], ids=["merged", "two-files"])
def test_greedy_and_beam_tokens_equal_pytorch(exported, merged):
    model, out = exported
    torch_dec, ort_dec = Seq2SeqTorchDecoder(model, 1), OrtSeq2SeqDecoder(out, model.config, 1, merged=merged)
    assert ort_dec.merged is merged and ("merged" in ort_dec.sessions) is merged
    opts = SamplingOptions(max_new_tokens=8, greedy=True)
    assert generate(ort_dec, PROMPTS, opts) == generate(torch_dec, PROMPTS, opts)
    beams = BeamOptions(num_beams=3, max_new_tokens=6)
    assert beam_search(ort_dec, PROMPTS, beams) == beam_search(torch_dec, PROMPTS, beams)


def test_first_step_logits_and_cross_states_match(exported):
    import numpy as np

    model, out = exported
    torch_dec, ort_dec = Seq2SeqTorchDecoder(model, 1), OrtSeq2SeqDecoder(out, model.config, 1)
    ids = np.array([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    np.testing.assert_allclose(ort_dec.prefill(ids, mask), torch_dec.prefill(ids, mask), atol=1e-4, rtol=1e-4)
    for i, layer in enumerate(torch_dec.cross):
        ours = [v for k, v in ort_dec.past.items() if k.startswith(f"past_key_values.{i}.encoder.")]
        for a, b in zip(ours, layer, strict=True):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-4, rtol=1e-4)


def test_cli_export_refuses_to_clobber_and_generates(tmp_path, capsys):
    from flurka_export.cli.main import main

    ckpt = tmp_path / "ckpt"
    save_pretrained(s2s(*KINDS[0]), ckpt)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(OutputError):
        export_onnx(ckpt, out, overwrite=False)
    assert main(["export", str(ckpt), "-o", str(out)]) != 0  # the CLI never clobbers without --overwrite
    assert main(["export", str(ckpt), "-o", str(out), "--overwrite"]) == 0
    assert (out / "keep.txt").is_file() and (out / "decoder_with_past_model.onnx").is_file()
    assert main(["inspect", str(out / "decoder_model.onnx")]) == 0
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt-ids", "5,6,7", "--max-new-tokens", "4"]) == 0
    ort_tokens = capsys.readouterr().out.split()
    assert main(["generate", str(ckpt), "--prompt-ids", "5,6,7", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.split() == ort_tokens and len(ort_tokens) >= 1


def test_verify_names_a_missing_file_of_the_directory_in_one_line(tmp_path, capsys):
    from flurka_export.cli.main import main

    ckpt = tmp_path / "ck"
    save_pretrained(s2s(*KINDS[0]), ckpt)
    (tmp_path / "out").mkdir()
    assert main(["verify", str(ckpt), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "has no encoder_model.onnx" in err and "decoder_with_past_model.onnx" in err
    assert len(err.strip().splitlines()) == 1
