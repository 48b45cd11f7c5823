"""The generating model.py on a seq2seq export directory, without a server: concurrent streams over the encoder,
the first decoder step and the decoder with past, their self-attention and cross states stacked, give the tokens
of flurka_export.generate on the same files (FLuRKA cross-attention and the softmax baseline, whose cross K/V of
different source lengths are padded with their mask 0)."""

import numpy as np
import pytest

from flurka_export import export_onnx
from flurka_export.generate import GenerationConfig, SamplingOptions, generate
from flurka_export.generate.seq2seq_decoder import OrtSeq2SeqDecoder
from flurka_export.models import FlurkaConfig, build_model
from flurka_export.models.exported import ExportedModel
from flurka_export.serve.repository import served_files

pytest.importorskip("tritonclient.grpc.model_config_pb2")

from tests.serve.test_generate_model import FakeRequest, load_model  # noqa: E402

SOURCES = [[1, 2, 3], [5], list(range(10, 30)), [7, 7, 7, 7, 7, 9], [40, 3]]


@pytest.fixture(scope="module", params=[("flurka-elu", "kernel-elu", 4.0), ("softmax", "softmax", 10.0)],
                ids=lambda p: p[0])
def s2s_dir(request, tmp_path_factory):
    """Random weights, the decoder's self-attention and positions scaled up: a fresh model's next token hardly
    depends on its own past, and then a beam that kept the wrong state would still pass."""
    import torch

    enc, dec, scale = request.param
    config = FlurkaConfig(task="seq2seq", attention=enc, decoder_attention=dec, num_layers=2, hidden_size=32,
                          num_heads=2, max_seq_len=32, max_target_len=24, low_rank=8, vocab_size=48, seed=3)
    model = build_model(config)
    with torch.no_grad():
        for name, w in model.named_parameters():
            if "layers." in name and ".attention." in name and w.dim() == 2:
                w.mul_(scale)
            if "decoder_positions" in name:
                w.mul_(5 * scale)
    return export_onnx(model, tmp_path_factory.mktemp("s2s") / "out")


def direct(path, source, max_new):
    config = ExportedModel.read(served_files(path)[0]).config
    return generate(OrtSeq2SeqDecoder(path, config, 0), [source], SamplingOptions(max_new_tokens=max_new),
                    GenerationConfig())[0]


def test_concurrent_streams_equal_generate(monkeypatch, tmp_path, s2s_dir):
    model = load_model(monkeypatch, s2s_dir, tmp_path)
    try:
        requests = [FakeRequest(input_ids=np.array(s, np.int32), max_tokens=np.int32(8 + i), stream=True)
                    for i, s in enumerate(SOURCES)]
        model.execute(requests)
        for i, (s, r) in enumerate(zip(SOURCES, requests, strict=True)):
            assert r.tokens() == direct(s2s_dir, s, 8 + i), f"stream {i}"
        sched = model.scheduler
        assert sched.rows > sched.steps, "the streams were never stepped together"
    finally:
        model.finalize()


def test_beam_requests_equal_beam_search(monkeypatch, tmp_path, s2s_dir):
    from flurka_export.generate import BeamOptions, beam_search

    config = ExportedModel.read(served_files(s2s_dir)[0]).config
    model = load_model(monkeypatch, s2s_dir, tmp_path)
    try:
        requests = [FakeRequest(input_ids=np.array(s, np.int32), max_tokens=np.int32(8), beam_width=np.int32(3))
                    for s in SOURCES[:3]]
        model.execute(requests)
        want = beam_search(OrtSeq2SeqDecoder(s2s_dir, config, 0), SOURCES[:3], BeamOptions(num_beams=3,
                                                                                         max_new_tokens=8))
        assert [r.tokens() for r in requests] == want  # self and cross states reordered with their beams
    finally:
        model.finalize()


def test_limits_are_the_encoder_and_decoder_ones(monkeypatch, tmp_path, s2s_dir):
    model = load_model(monkeypatch, s2s_dir, tmp_path)
    try:
        long_source = FakeRequest(input_ids=np.arange(33, dtype=np.int32) % 48, max_tokens=np.int32(2))
        too_many = FakeRequest(input_ids=np.array([1, 2], np.int32), max_tokens=np.int32(24))
        fine = FakeRequest(input_ids=np.arange(32, dtype=np.int32) % 48, max_tokens=np.int32(23))
        model.execute([long_source, too_many, fine])
        assert long_source.tokens() == ["the source has 33 tokens > max_seq_len=32, the encoder's limit"]
        assert too_many.tokens() == ["max_tokens=24 + the start token > max_target_len=24, the decoder's positions "
                                     "(use at most max_tokens=23)"]
        assert len(fine.tokens()) >= 1 and isinstance(fine.tokens()[0], int)
    finally:
        model.finalize()


def test_deploy_python_backend_copies_the_parts_and_other_backends_refuse(s2s_dir, tmp_path, capsys):
    from flurka_export.cli.main import main

    assert main(["deploy", "triton", str(s2s_dir), "-o", str(tmp_path / "repo"), "--name", "mt",
                 "--backend", "python"]) == 0
    version = tmp_path / "repo" / "mt" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["beam_core.py", "decoder_model.onnx",
                                                         "decoder_with_past_model.onnx", "encoder_model.onnx",
                                                         "generate_decoders.py", "model.py", "sampling.py"]
    config = (tmp_path / "repo" / "mt" / "config.pbtxt").read_text()
    assert "decoupled: true" in config and '\\"decoder\\": \\"seq2seq\\"' in config
    capsys.readouterr()
    assert main(["deploy", "triton", str(s2s_dir), "-o", str(tmp_path / "r2"), "--name", "mt"]) == 1
    err = capsys.readouterr().err.strip()
    assert "is a directory" in err and "--backend python" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r2").exists()


def test_serve_exports_a_seq2seq_checkpoint_to_a_directory(tmp_path):
    from pathlib import Path

    from flurka_export.cli.serve import _onnx_for
    from flurka_export.models import save_pretrained

    config = FlurkaConfig(task="seq2seq", num_layers=1, hidden_size=32, num_heads=2, max_seq_len=16, low_rank=8,
                          vocab_size=40)
    save_pretrained(build_model(config), tmp_path / "ck")
    with _onnx_for(Path(tmp_path / "ck")) as path:
        assert path.is_dir() and [p.name for p in served_files(path)] == [
            "encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"]
