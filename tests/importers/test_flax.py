"""import-flax against models written in the authors' tree layout (tests/importers/sabertooth_like.py):
attention, block and logits within 1e-5 relative at N = 128 and 512, every FLuRKA variant and its baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flurka_export.importers.flax import FlaxImportError, UnmappedParametersWarning, import_flax_checkpoint

flax = pytest.importorskip("flax", reason="the Flax importer tests build a Flax model: pip install 'flurka-export[flax]'")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax.serialization import to_bytes  # noqa: E402

from tests.importers import sabertooth_like as st  # noqa: E402

D, H, K, V, FFN, C = 32, 4, 16, 40, 48, 3
BANK = np.random.default_rng(3).standard_normal((3 * H, D // H, D // H)).astype(np.float32)
VARIANTS = {  # their attention_type -> what their code computes at inference (up_train=True, switch=True)
    "LinPerfMHA": "flurka-relu", "PerfMHA": "kernel-relu",
    "LinRNNsMHA": "flurka-elu", "RNNsMHA": "kernel-elu",
    "LinRFAMHA": "flurka-rfa", "RFAMHA": "kernel-rfa",
    "LinMHA": "linformer",
}


def _cfg(attention_type, up_train=True, act="gelu_new"):
    return dict(attention_type=attention_type, heads=H, hidden=D, k=K, up_train=up_train, bank=BANK, vocab=V,
                ffn=FFN, act=act, layers=2, classes=C)


def _inputs(n, seed=1):
    """A batch padded to n (their training pads to max_seq_length), two segments."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, (2, n))
    mask = np.ones((2, n), np.int64)
    mask[1, n // 3:] = 0
    types = np.zeros((2, n), np.int64)
    types[:, n // 4:] = 1
    return ids, mask, types * mask


def _build(tmp_path, model, n, wrap=None):
    ids, mask, types = _inputs(n)
    params = st.randomize(model.init(jax.random.PRNGKey(0), ids, mask, types)["params"])
    path = tmp_path / "model.msgpack"
    path.write_bytes(to_bytes(wrap(params) if wrap else params))
    np.save(tmp_path / "8_8.npy", BANK)
    return params, path


def _rel(got, want):
    return float(np.abs(np.asarray(got) - np.asarray(want)).max() / np.abs(np.asarray(want)).max())


def _torch(*arrays):
    return [torch.from_numpy(np.asarray(a)) for a in arrays]


@pytest.mark.parametrize("n", [128, 512])
@pytest.mark.parametrize("attention_type", sorted(VARIANTS))
def test_attention_block_and_logits_match_their_code(tmp_path, attention_type, n):
    cfg = _cfg(attention_type)
    model = st.BertForSequenceClassification(cfg)
    params, path = _build(tmp_path, model, n)
    run_config = {"attention_type": attention_type, "up_train": True, "max_seq_length": n, "hidden_act": "gelu_new"}
    ours, report = import_flax_checkpoint(path, tmp_path / "ckpt", flax_config=run_config,
                                          random_matrices=tmp_path / "8_8.npy")
    assert report.config.attention == VARIANTS[attention_type] and report.unmapped == []
    assert report.config.max_seq_len == n and not report.config.mask_keys_in_attention
    ids, mask, types = _inputs(n)
    x = np.random.default_rng(5).standard_normal((2, n, D)).astype(np.float32)
    block = params["bert"]["encoder_layer_1"]
    want_attn = st.FastSelfAttention(cfg).apply({"params": block["self_attention"]}, x, mask)
    want_block = st.TransformerBlock(cfg).apply({"params": block}, x, mask)
    want = model.apply({"params": params}, ids, mask, types)
    tx, tmask, tids, ttypes = _torch(x, mask, ids, types)
    with torch.no_grad():
        layer = ours.encoder.layers[1]
        errors = (_rel(layer.attention(tx, None), want_attn), _rel(layer(tx, tmask), want_block),
                  _rel(ours(tids, tmask, ttypes), want))
    assert max(errors) < 1e-5, f"relative errors attention/block/logits {errors}"


def test_linperf_trained_without_up_train_is_kernel_relu(tmp_path):
    # The GLUE config has up_train=False: LinPerfMHA then never downsamples (their E matrices are unused).
    model = st.BertForSequenceClassification(_cfg("LinPerfMHA", up_train=False))
    params, path = _build(tmp_path, model, 128)
    ours, report = import_flax_checkpoint(path, flax_config={"attention_type": "LinPerfMHA", "up_train": False,
                                                             "max_seq_length": 128, "model": {"hidden_act": "gelu_new"}})
    assert report.config.attention == "kernel-relu"
    assert {why for _, why in report.dropped} == {"not used: this attention kind does not downsample keys and values"}
    ids, mask, types = _inputs(128)
    with torch.no_grad():
        got = ours(*_torch(ids, mask, types))
    assert _rel(got, model.apply({"params": params}, ids, mask, types)) < 1e-5


def test_pretraining_train_state_imports_without_flags(tmp_path):
    model = st.BertForPreTraining(_cfg("VanillaMHA"))  # gelu_new, as their pre-training configs
    params, path = _build(tmp_path, model, 128, wrap=lambda p: {"step": 7, "params": p, "opt_state": {"0": {"mu": p}}})
    ours, report = import_flax_checkpoint(path)
    assert any("hidden_act not given: gelu_new" in n for n in report.notes)
    assert report.config.task == "mlm" and report.config.attention == "softmax"
    assert report.config.mask_keys_in_attention and report.config.tie_word_embeddings
    dropped = {name for name, _ in report.dropped}
    assert dropped == {"bert/pooler/kernel", "bert/pooler/bias", "classification/kernel", "classification/bias"}
    assert any("opt_state, step" in n for n in report.notes)
    ids, mask, types = _inputs(128)
    want, _ = model.apply({"params": params}, ids, mask, types)
    with torch.no_grad():
        got = ours(*_torch(ids, mask, types)).numpy()
    real = mask.astype(bool)
    assert _rel(got[real], np.asarray(want)[real]) < 1e-5


def test_choices_that_parameters_cannot_make_are_errors(tmp_path):
    model = st.BertForSequenceClassification(_cfg("LinRNNsMHA"))
    params, path = _build(tmp_path, model, 128)
    with pytest.raises(FlaxImportError, match="LinPerfMHA .* LinRNNsMHA .* pass --flax-config .* or --attention"):
        import_flax_checkpoint(path)
    with pytest.raises(FlaxImportError, match="E_128 for 128-token inputs and E_512 for 512-token inputs.*--seq-len 128 or --seq-len 512"):
        import_flax_checkpoint(path, attention="flurka-elu")
    with pytest.raises(FlaxImportError, match=r"downsample matrices for N in \[128, 512\], none for N=256"):
        import_flax_checkpoint(path, attention="flurka-elu", seq_len=256)
    with pytest.raises(FlaxImportError, match="contradicts the run config"):
        import_flax_checkpoint(path, attention="flurka-relu", flax_config={"attention_type": "LinRNNsMHA", "up_train": True})
    with pytest.raises(FlaxImportError, match="LinEVAMHA .* is not supported yet"):
        import_flax_checkpoint(path, flax_config={"attention_type": "LinEVAMHA", "up_train": True})
    _, report = import_flax_checkpoint(path, attention="flurka-elu", seq_len=512)
    assert sorted(n for n, _ in report.dropped)[:2] == ["bert/encoder_layer_0/self_attention/mha/key_downsample_mat_128",
                                                       "bert/encoder_layer_0/self_attention/mha/value_downsample_mat_128"]


def test_eva_parameters_refused_by_name_and_unmapped_named(tmp_path):
    model = st.BertForSequenceClassification(_cfg("LinRFAMHA"))
    params, _ = _build(tmp_path, model, 128)
    tree = jax.tree_util.tree_map(np.asarray, params)
    tree["bert"]["encoder_layer_0"]["self_attention"]["mha"]["mystery"] = np.ones(3, np.float32)
    (tmp_path / "extra.msgpack").write_bytes(to_bytes(tree))
    with pytest.raises(FlaxImportError, match="have no place in .*: bert/encoder_layer_0/self_attention/mha/mystery"):
        import_flax_checkpoint(tmp_path / "extra.msgpack", seq_len=128)
    with pytest.warns(UnmappedParametersWarning, match="mystery"):
        _, report = import_flax_checkpoint(tmp_path / "extra.msgpack", seq_len=128, allow_unmapped=True)
    assert report.unmapped == ["bert/encoder_layer_0/self_attention/mha/mystery"]
    assert any("drew fresh N(0, 1) features" in n for n in report.notes)
    tree["bert"]["encoder_layer_0"]["self_attention"]["mha"]["adaptive_mu_q"] = {"layers_0": {"bias": jnp.ones(2)}}
    (tmp_path / "eva.msgpack").write_bytes(to_bytes(tree))
    with pytest.raises(FlaxImportError, match="LinEVAMHA .* not supported yet"):
        import_flax_checkpoint(tmp_path / "eva.msgpack", seq_len=128)


def test_cli_import_flax(tmp_path, capsys):
    from flurka_export.cli.main import main
    from flurka_export.models import load_pretrained

    _, path = _build(tmp_path, st.BertForSequenceClassification(_cfg("LinRFAMHA")), 128)
    (tmp_path / "run.json").write_text('{"max_seq_length": 128, "model": {"attention_type": "LinRFAMHA", '
                                       '"up_train": true, "hidden_act": "gelu_new", "layer_norm_eps": 1e-12}}')
    rc = main(["import-flax", str(path), "-o", str(tmp_path / "ck"), "--flax-config", str(tmp_path / "run.json"),
               "--random-matrices", str(tmp_path / "8_8.npy")])
    assert rc == 0
    assert "attention=flurka-rfa" in capsys.readouterr().out
    assert load_pretrained(tmp_path / "ck").config.num_features == 8
    assert main(["import-flax", str(path), "-o", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seq-len 128 or --seq-len 512" in err[0]
    assert main(["import-flax", str(tmp_path / "nope.msgpack"), "-o", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()


def test_their_logits_through_onnx_runtime_and_verify(tmp_path, capsys):
    from flurka_export import export_onnx
    from flurka_export.cli.main import main
    from flurka_export.runtimes.ort_runner import make_session

    model = st.BertForSequenceClassification(_cfg("LinRNNsMHA"))
    params, path = _build(tmp_path, model, 128)
    import_flax_checkpoint(path, tmp_path / "ck", flax_config={"attention_type": "LinRNNsMHA", "up_train": True,
                                                              "max_seq_length": 128, "hidden_act": "gelu_new"})
    onnx_path = export_onnx(tmp_path / "ck", tmp_path / "m.onnx")
    ids, mask, types = _inputs(128)
    want = model.apply({"params": params}, ids, mask, types)
    got = make_session(onnx_path, ["CPUExecutionProvider"]).run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    assert _rel(got, want) < 1e-5
    assert main(["verify", str(tmp_path / "ck"), str(onnx_path), "--runtimes", "torch,ort"]) == 0
    assert "RESULT: PASS" in capsys.readouterr().out
