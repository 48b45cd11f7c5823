"""inspect on an export directory: each file's I/O, the state per layer with bytes, --check over every file; and
files without a FlurkaAttention node (a seq2seq decoder, a causal LM) pass --check."""

import pytest

from flurka_export import export_onnx
from flurka_export.cli.main import main
from flurka_export.models import FlurkaConfig, build_model


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    d = tmp_path_factory.mktemp("insp")
    model = build_model(FlurkaConfig(task="seq2seq", num_layers=2, hidden_size=32, num_heads=2, max_seq_len=24,
                                     low_rank=8, vocab_size=48))
    export_onnx(model, d / "out")
    (d / "out" / "notes.onnx").write_text("not a model")  # a stray file: not read
    return d / "out"


def test_directory_report_names_every_file_and_the_state(out, capsys):
    assert main(["inspect", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    for name in ("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx",
                 "decoder_model_merged.onnx"):
        assert f"  {name} (" in text
    assert "notes.onnx" not in text
    # kernel-elu self state and flurka-elu cross state: [B, 2 heads, M = 16, d + 1 = 17] float32 = 2176 bytes each
    assert "layer 1: decoder.recurrent_state float32 ['batch', 2, 16, 17] 2.1 KiB; encoder.state float32 " \
           "['batch', 2, 16, 17] 2.1 KiB" in text
    assert "state between steps: 8.5 KiB per sequence, whatever the source and target length" in text
    assert "check: 4 files" in text


def test_a_directory_without_an_export_is_one_line(tmp_path, capsys):
    (tmp_path / "a.onnx").write_text("x")
    assert main(["inspect", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "is a directory with no exported model's files" in err and len(err.splitlines()) == 1


def test_a_causal_lm_file_passes_check(tmp_path, capsys):
    model = build_model(FlurkaConfig(task="lm", attention="kernel-elu", num_layers=1, hidden_size=32, num_heads=2,
                                     max_seq_len=16, low_rank=8, vocab_size=40))
    export_onnx(model, tmp_path / "lm.onnx")
    assert main(["inspect", str(tmp_path / "lm.onnx"), "--check"]) == 0


def test_a_directory_missing_a_part_is_one_line_for_every_command(out, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "decoder_model.onnx").unlink()
    want = f"{broken} has no decoder_model.onnx: a seq2seq export directory holds encoder_model.onnx, decoder_model.onnx"
    for argv in (["inspect", str(broken)], ["generate", str(broken), "--prompt-ids", "1,2"],
                 ["deploy", "triton", str(broken), "--backend", "python", "-o", str(tmp_path / "repo"), "--name", "m"]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert want in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "repo").exists()
