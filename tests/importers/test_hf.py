"""import-hf against small random models built with transformers' own classes (no downloads):
logits equal transformers' forward on a padded batch with token types, then ONNX Runtime equals both."""

from __future__ import annotations

import json

import pytest
import torch

from flurka_export import export_onnx
from flurka_export.importers.hf import HFImportError, import_hf_checkpoint
from flurka_export.runtimes.ort_runner import make_session

T = pytest.importorskip("transformers", reason="the import-hf tests build models with transformers (dev extra)")

TEXT = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)
BERT = dict(TEXT, max_position_embeddings=40, type_vocab_size=2, hidden_act="gelu_new")
ROBERTA = dict(TEXT, max_position_embeddings=42, type_vocab_size=1, pad_token_id=1)
VIT = dict(image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
           intermediate_size=48)
ARCHS = {
    "BertModel": ("BertConfig", BERT),
    "BertForSequenceClassification": ("BertConfig", dict(BERT, num_labels=3)),
    "BertForMaskedLM": ("BertConfig", BERT),
    "BertForPreTraining": ("BertConfig", BERT),
    "RobertaForSequenceClassification": ("RobertaConfig", dict(ROBERTA, num_labels=3)),
    "RobertaForMaskedLM": ("RobertaConfig", ROBERTA),
    "ViTForImageClassification": ("ViTConfig", dict(VIT, num_labels=5)),
}


def _save(tmp_path, arch: str, **changes):
    config_cls, fields = ARCHS[arch]
    torch.manual_seed(0)
    model = getattr(T, arch)(getattr(T, config_cls)(**dict(fields, **changes))).eval()
    with torch.no_grad():  # every tensor random, so a swapped weight/bias or LayerNorm cannot go unnoticed
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    model.save_pretrained(tmp_path / arch)
    return model, tmp_path / arch


def _batch(model, arch: str):
    """A padded batch (rows of 11, 7 and 3 real tokens) with two segments, padded with the pad token."""
    g = torch.Generator().manual_seed(1)
    if arch.startswith("ViT"):
        return {"pixel_values": torch.randn(3, 3, 16, 16, generator=g)}, None
    ids = torch.randint(3, 60, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = model.config.pad_token_id
    feed = {"input_ids": ids, "attention_mask": mask}
    if model.config.type_vocab_size > 1:
        types = torch.zeros_like(ids)
        types[:, 5:] = 1
        feed["token_type_ids"] = types * mask
    return feed, mask.bool()


def _hf_output(model, arch, feed):
    with torch.no_grad():
        out = model(**feed)
    if arch == "BertModel":
        return out.last_hidden_state
    return out.prediction_logits if arch == "BertForPreTraining" else out.logits


# ONNX Runtime on one architecture per family and per embedding layout (the rest differ only in the head).
EXPORTED = {"BertModel", "BertForPreTraining", "RobertaForSequenceClassification", "ViTForImageClassification"}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_logits_equal_transformers_then_onnx_runtime(tmp_path, arch):
    hf_model, directory = _save(tmp_path, arch)
    ours, report = import_hf_checkpoint(directory, tmp_path / "ckpt")
    assert report.unmapped == [] and report.config.attention == "softmax"
    feed, real = _batch(hf_model, arch)
    want = _hf_output(hf_model, arch, feed)
    with torch.no_grad():
        got = ours(**feed)
    # Token-level outputs are compared on real tokens: RoBERTa gives padding tokens position padding_idx,
    # ours gives them their index; no real token sees padding (the mask), so only padded rows' own outputs differ.
    pick = (lambda t: t[real]) if want.dim() == 3 else (lambda t: t)
    scale = float(want.abs().max())
    assert float((pick(got) - pick(want)).abs().max()) <= 1e-5 * max(1.0, scale)
    if arch not in EXPORTED:
        return
    onnx_path = export_onnx(tmp_path / "ckpt", tmp_path / "m.onnx")
    sess = make_session(onnx_path, ["CPUExecutionProvider"])
    ort_out = sess.run(None, {k: v.numpy() for k, v in feed.items() if k in {i.name for i in sess.get_inputs()}})[0]
    assert float((pick(torch.from_numpy(ort_out)) - pick(want)).abs().max()) <= 1e-5 * max(1.0, scale)


def test_every_tensor_is_mapped_or_dropped_by_name(tmp_path):
    _, directory = _save(tmp_path, "BertForPreTraining")
    _, report = import_hf_checkpoint(directory)
    assert {name for name, _ in report.dropped} == {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                                     "cls.seq_relationship.weight", "cls.seq_relationship.bias"}
    assert "dropped (pre-training next-sentence head: not part of the masked-LM model): bert.pooler" in report.summary()


def test_convert_attention_and_export_on_the_import(tmp_path, capsys):
    from flurka_export.cli.main import main

    _, directory = _save(tmp_path, "BertForSequenceClassification")
    assert main(["import-hf", str(directory), "-o", str(tmp_path / "bert")]) == 0
    assert main(["convert-attention", str(tmp_path / "bert"), "--to", "flurka-elu", "--low-rank", "16",
                 "-o", str(tmp_path / "bert-flurka")]) == 0
    assert main(["export", str(tmp_path / "bert-flurka"), "-o", str(tmp_path / "b.onnx")]) == 0
    assert main(["verify", str(tmp_path / "bert-flurka"), str(tmp_path / "b.onnx"), "--runtimes", "torch,ort"]) == 0
    out = capsys.readouterr().out
    assert "task=classify attention=softmax" in out and "RESULT: PASS" in out


def test_pickled_weights_are_refused_in_one_line(tmp_path, capsys):
    from flurka_export.cli.main import main

    _, directory = _save(tmp_path, "BertModel")
    (directory / "model.safetensors").rename(directory / "pytorch_model.bin")
    capsys.readouterr()
    assert main(["import-hf", str(directory), "-o", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pytorch_model.bin (pickled weights, never loaded here)" in err[0]
    assert not (tmp_path / "x").exists()


def test_unsupported_and_unknown_tensors_are_named(tmp_path):
    from safetensors.torch import load_file, save_file

    _, directory = _save(tmp_path, "BertModel")
    state = load_file(directory / "model.safetensors")
    state["encoder.extra.weight"] = torch.ones(2)
    save_file(state, directory / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(HFImportError, match=r"1 tensors have no place in a encoder model: encoder.extra.weight"):
        import_hf_checkpoint(directory)
    cfg = json.loads((directory / "config.json").read_text())
    del cfg["num_hidden_layers"]
    (directory / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HFImportError, match="config.json has no 'num_hidden_layers', which BertModel needs"):
        import_hf_checkpoint(directory)
    hf_model, directory = _save(tmp_path, "BertModel", position_embedding_type="relative_key")
    with pytest.raises(HFImportError, match="position_embedding_type='relative_key' is not supported"):
        import_hf_checkpoint(directory)
    T.DistilBertModel(T.DistilBertConfig(n_layers=1, dim=16, n_heads=2, hidden_dim=32, vocab_size=20)).save_pretrained(
        tmp_path / "distilbert")
    with pytest.raises(HFImportError, match=r"architectures \['DistilBertModel'\] is not supported; supported: .*GPT2"):
        import_hf_checkpoint(tmp_path / "distilbert")
