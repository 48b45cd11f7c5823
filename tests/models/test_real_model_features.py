"""What real checkpoints need: token types, activations, pre/post-LN, position offset, pooler, tied decoder,
MLM transform, attention that ignores the padding mask. Each checked against a plain PyTorch re-computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from flurka_export.models import build_model, load_pretrained, save_pretrained
from tests.helpers import tiny_config


def _ids(b=2, n=9, seed=0):
    return torch.randint(0, 512, (b, n), generator=torch.Generator().manual_seed(seed))


def test_token_types_are_added_and_default_to_segment_zero():
    model = build_model(tiny_config(task="encoder", type_vocab_size=2, attention="softmax"))
    ids = _ids()
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    zero = model(ids, torch.ones_like(ids))
    assert torch.equal(zero, model(ids, torch.ones_like(ids), torch.zeros_like(ids)))
    assert not torch.allclose(zero, model(ids, torch.ones_like(ids), types))
    enc = model.encoder
    enc.token_type_embeddings.weight.data[1] = enc.token_type_embeddings.weight.data[0]
    torch.testing.assert_close(model(ids, torch.ones_like(ids), types), zero)


@pytest.mark.parametrize("act,ref", [("gelu", lambda x: F.gelu(x)), ("gelu_new", lambda x: F.gelu(x, approximate="tanh")),
                                     ("relu", F.relu), ("silu", F.silu)])
def test_hidden_activation(act, ref):
    model = build_model(tiny_config(hidden_act=act))
    ffn = model.encoder.layers[0].ffn
    x = torch.randn(3, 64)
    torch.testing.assert_close(ffn(x), ffn[2](ref(ffn[0](x))))


def test_gelu_tanh_differs_from_exact_gelu():
    x = torch.linspace(-4, 4, 1001)
    assert (F.gelu(x) - F.gelu(x, approximate="tanh")).abs().max() > 1e-4


def test_pre_norm_text_encoder_matches_hand_written_block():
    model = build_model(tiny_config(task="encoder", attention="softmax", num_layers=1, pre_norm=True))
    enc = model.encoder
    ids = _ids()
    x = enc.norm(enc.word_embeddings(ids) + enc.position_embeddings[:9])
    layer = enc.layers[0]
    x = x + layer.attention(layer.norm1(x), torch.ones_like(ids))
    x = x + layer.ffn(layer.norm2(x))
    torch.testing.assert_close(model(ids, torch.ones_like(ids)), enc.final_norm(x))


def test_position_offset_uses_rows_from_the_offset():
    model = build_model(tiny_config(task="encoder", position_offset=2, max_seq_len=128))
    enc = model.encoder
    assert enc.position_embeddings.shape[0] == 130
    ids = _ids(n=128)
    out = model(ids, torch.ones_like(ids))
    enc.position_embeddings.data[:2] = 1e3  # rows before the offset are never used
    torch.testing.assert_close(model(ids, torch.ones_like(ids)), out)


def test_no_pooler_and_tied_decoder(tmp_path):
    cls = build_model(tiny_config(pooler=False))
    h = cls.encoder(_ids(), torch.ones(2, 9, dtype=torch.long))
    torch.testing.assert_close(cls(_ids(), torch.ones(2, 9, dtype=torch.long)), cls.classifier(h[:, 0]))
    mlm = build_model(tiny_config(task="mlm", tie_word_embeddings=True, mlm_transform=False))
    assert "decoder.weight" not in mlm.state_dict()
    h = mlm.encoder(_ids(), None)
    want = h @ mlm.encoder.word_embeddings.weight.T + mlm.decoder_bias
    torch.testing.assert_close(mlm(_ids()), want)
    save_pretrained(mlm, tmp_path / "tied")  # one matrix stored once: safetensors refuses shared tensors
    torch.testing.assert_close(load_pretrained(tmp_path / "tied")(_ids()), want)


def test_mlm_transform_activation_can_differ_from_hidden_act():
    mlm = build_model(tiny_config(task="mlm", hidden_act="relu", mlm_act="gelu"))
    assert isinstance(mlm.transform[1], torch.nn.GELU) and isinstance(mlm.encoder.layers[0].ffn[1], torch.nn.ReLU)


@pytest.mark.parametrize("attention", ["softmax", "flurka-relu", "kernel-elu"])
def test_mask_keys_in_attention_false_ignores_the_mask(attention):
    ids = _ids()
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    ignoring = build_model(tiny_config(attention=attention, mask_keys_in_attention=False))
    torch.testing.assert_close(ignoring(ids, mask), ignoring(ids, torch.ones_like(ids)))
    masking = build_model(tiny_config(attention=attention))
    assert not torch.allclose(masking(ids, mask), masking(ids, torch.ones_like(ids)))
