import pytest
import torch

from flurka_export.cli import main
from flurka_export.models import build_model, load_pretrained, save_pretrained
from flurka_export.models.convert import convert_attention
from tests.helpers import tiny_config


def _inputs(n=20):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 512, (2, n), generator=g), torch.ones(2, n, dtype=torch.int64)


def test_softmax_to_flurka_reuses_everything_and_adds_projections():
    src = build_model(tiny_config(attention="softmax"))
    new, report = convert_attention(src, "flurka-elu", low_rank=8)
    assert new.config.attention == "flurka-elu" and new.config.low_rank == 8
    assert report.added == [f"encoder.layers.{i}.attention.{e}" for i in range(2) for e in ("E_K", "E_V")]
    assert report.dropped == [] and report.reinitialised == []
    src_state, new_state = src.state_dict(), new.state_dict()
    for name in report.reused:
        assert torch.equal(src_state[name], new_state[name]), name
    assert "encoder.layers.0.attention.query.weight" in report.reused
    assert new(*_inputs()).shape == (2, 2)
    assert not torch.allclose(new(*_inputs()), src(*_inputs()))  # the attention really changed
    assert "E_K" in report.summary()


def test_flurka_rfa_to_kernel_elu_drops_and_low_rank_change_reinitialises():
    src = build_model(tiny_config(attention="flurka-rfa"))
    _, report = convert_attention(src, "kernel-elu")
    assert set(report.dropped) == {f"encoder.layers.{i}.attention.{n}" for i in range(2)
                                   for n in ("E_K", "E_V", "feature_proj")}
    _, report = convert_attention(src, "flurka-favor", num_features=8)
    assert "encoder.layers.0.attention.feature_proj" in report.reinitialised  # [H, 16, d] -> [H, 8, d]
    assert "encoder.layers.0.attention.E_K" in report.reused


def test_same_kind_is_an_error_and_unknown_kind():
    src = build_model(tiny_config(attention="flurka-elu"))
    with pytest.raises(ValueError, match="already"):
        convert_attention(src, "flurka-elu")
    with pytest.raises(ValueError, match="unknown attention"):
        convert_attention(src, "flurka-cosine")


def test_image_model_converts():
    src = build_model(tiny_config(task="image", attention="softmax", max_seq_len=17))
    new, report = convert_attention(src, "flurka-relu", low_rank=4)
    assert new(torch.randn(1, 3, 16, 16)).shape == (1, 2)
    assert len(report.added) == 4


def test_cli_convert_attention(tmp_path, capsys):
    save_pretrained(build_model(tiny_config(attention="softmax")), tmp_path / "src")
    rc = main(["convert-attention", str(tmp_path / "src"), "--to", "flurka-rfa", "--low-rank", "8",
               "--num-features", "4", "-o", str(tmp_path / "dst")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "softmax -> flurka-rfa" in out and "feature_proj" in out
    model = load_pretrained(tmp_path / "dst")
    assert model.config.attention == "flurka-rfa" and model.config.num_features == 4
    assert main(["convert-attention", str(tmp_path / "dst"), "--to", "flurka-rfa", "--low-rank", "8",
                 "--num-features", "4", "-o", str(tmp_path / "x")]) == 1
