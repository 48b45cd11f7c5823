"""The lm family in PyTorch: prefill + steps equals one prefill, left padding changes nothing for real tokens,
causal rules and the context limit."""

import pytest
import torch

from flurka_export.models import ConfigError, FlurkaConfig, build_model
from flurka_export.models.attention import SequenceTooLongError
from flurka_export.models.lm import empty_past, past_shape, positions_from_mask
from flurka_export.ops.causal import CAUSAL_FEATURE_MAPS

KINDS = ["softmax", *(f"kernel-{m}" for m in CAUSAL_FEATURE_MAPS)]


def lm(attention: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    fields = dict(task="lm", attention=attention, num_layers=2, hidden_size=32, num_heads=2, max_seq_len=48,
                  vocab_size=50, num_features=8, **kw)
    return build_model(FlurkaConfig(**fields))


@pytest.mark.parametrize("attention", KINDS)
def test_prefill_then_steps_equals_one_prefill(attention):
    model = lm(attention)
    ids = torch.randint(0, 50, (2, 11))
    full = model(ids)
    logits, past = model(ids[:, :7], use_cache=True)
    parts, mask = [logits], torch.ones(2, 7, dtype=torch.long)
    for t in range(7, 11):
        mask = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1)
        logits, past = model(ids[:, t:t + 1], mask, past_key_values=past)
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("attention", KINDS)
def test_left_padding_leaves_real_tokens_unchanged(attention):
    model = lm(attention)
    ids = torch.randint(0, 50, (1, 9))
    alone = model(ids)
    padded = torch.cat([torch.full((1, 4), 7), ids], 1)
    mask = torch.cat([torch.zeros(1, 4, dtype=torch.long), torch.ones(1, 9, dtype=torch.long)], 1)
    out = model(padded, mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 4:], alone, atol=1e-5, rtol=1e-5)


def test_state_size_is_constant_and_cache_grows():
    kernel = FlurkaConfig(task="lm", attention="kernel-elu", hidden_size=64, num_heads=4)
    softmax = kernel.replace(attention="softmax")
    assert past_shape(kernel, 2, 10) == past_shape(kernel, 2, 1000) == (2, 4, 16, 17)
    assert past_shape(softmax, 2, 10) == (2, 4, 10, 16)
    assert [t.shape[2] for t in empty_past(softmax, 3)[0]] == [0, 0]


def test_positions_come_from_the_mask():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert positions_from_mask(mask, 3).tolist() == [[0, 1, 2], [2, 3, 4]]


@pytest.mark.parametrize("attention,why", [
    ("flurka-elu", "low-rank step"), ("linformer", "low-rank step"), ("kernel-favor", "favor-causal")])
def test_non_causal_kinds_are_refused_with_the_reason(attention, why):
    with pytest.raises(ConfigError, match=why) as e:
        FlurkaConfig(task="lm", attention=attention)
    assert "kernel-elu" in str(e.value) and "softmax" in str(e.value)


def test_context_limit_is_refused_by_name():
    model = lm("kernel-elu")
    with pytest.raises(SequenceTooLongError, match="max_seq_len 48"):
        model(torch.zeros(1, 49, dtype=torch.long))
    _, past = model(torch.zeros(1, 40, dtype=torch.long), use_cache=True)
    with pytest.raises(SequenceTooLongError, match="context length 49"):
        model(torch.zeros(1, 9, dtype=torch.long), torch.ones(1, 49, dtype=torch.long), past_key_values=past)


def test_tied_head_shares_the_embedding():
    model = lm("softmax", tie_word_embeddings=True)
    assert not hasattr(model, "lm_head")
    assert "word_embeddings.weight" in model.state_dict()


def test_convert_softmax_lm_to_kernel_keeps_weights_and_companions(tmp_path):
    from flurka_export.models import load_pretrained, save_pretrained
    from flurka_export.models.convert import convert_checkpoint

    model = lm("softmax")
    save_pretrained(model, tmp_path / "soft")
    (tmp_path / "soft" / "generation_config.json").write_text('{"eos_token_id": 3}\n')
    report = convert_checkpoint(tmp_path / "soft", tmp_path / "lin", "kernel-elu")
    assert report.added == [] and report.dropped == [] and len(report.reused) == len(model.state_dict())
    converted = load_pretrained(tmp_path / "lin")
    assert converted.config.attention == "kernel-elu"
    assert (tmp_path / "lin" / "generation_config.json").read_text() == '{"eos_token_id": 3}\n'
    with pytest.raises(ConfigError, match="cannot be causal"):
        convert_checkpoint(tmp_path / "soft", tmp_path / "bad", "flurka-elu")


@pytest.mark.parametrize("attention", ["kernel-rfa", "kernel-favor-causal", "softmax"])
def test_save_load_is_bit_identical(tmp_path, attention):
    from flurka_export.models import load_pretrained, save_pretrained

    model = lm(attention)
    save_pretrained(model, tmp_path / "ck")
    loaded = load_pretrained(tmp_path / "ck")
    ids = torch.randint(0, 50, (2, 7))
    assert loaded.config == model.config and torch.equal(loaded(ids), model(ids))
