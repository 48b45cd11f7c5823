"""Models: every kind in every family, padding invariance, N_max, checkpoints."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from flurka_export.models import (
    ATTENTION_KINDS,
    TASKS,
    CheckpointError,
    FlurkaConfig,
    SequenceTooLongError,
    build_model,
    load_pretrained,
    save_pretrained,
)
from flurka_export.models.specs import spec_of
from tests.helpers import tiny_config

# The encoder families: every kind plugs into each (the lm family's causal kinds: tests/models/test_lm.py).
ENCODER_TASKS = [t for t in TASKS if not spec_of(t).generates]


def run(model, n=9, b=2, mask=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = model.config
    if c.task == "image":
        return model(torch.randn(b, c.num_channels, c.image_size, c.image_size, generator=g))
    ids = torch.randint(0, c.vocab_size, (b, n), generator=g)
    return model(ids, mask if mask is not None else torch.ones_like(ids))


@pytest.mark.parametrize("task", ENCODER_TASKS)
@pytest.mark.parametrize("attention", ATTENTION_KINDS)
def test_every_kind_builds_and_runs(task, attention):
    model = build_model(tiny_config(task=task, attention=attention))
    out = run(model)
    expected = {"classify": (2, 2), "mlm": (2, 9, 512), "image": (2, 2), "encoder": (2, 9, 64)}[task]
    assert out.shape == expected and torch.isfinite(out).all()


@pytest.mark.parametrize("attention", ["softmax", "linformer", "flurka-relu", "flurka-elu", "flurka-rfa", "flurka-favor"])
def test_padding_invariance(attention):
    # Padded tokens must change no real token's output: compare a padded batch with the unpadded sequence.
    model = build_model(tiny_config(task="mlm", attention=attention))
    ids = torch.randint(0, 512, (1, 11))
    mask = torch.ones(1, 11, dtype=torch.long)
    short = model(ids[:, :6], mask[:, :6])
    padded_ids = ids.clone()
    padded_ids[:, 6:] = torch.randint(0, 512, (1, 5))  # different garbage in the padding
    mask[:, 6:] = 0
    padded = model(padded_ids, mask)
    torch.testing.assert_close(padded[:, :6], short, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("attention", ["kernel-elu", "flurka-favor", "softmax"])
def test_length_one_and_n_max(attention):
    model = build_model(tiny_config(attention=attention))
    assert run(model, n=1).shape == (2, 2)
    assert run(model, n=model.config.max_seq_len).shape == (2, 2)


def test_longer_than_n_max_is_refused():
    model = build_model(tiny_config(attention="flurka-elu"))
    with pytest.raises(SequenceTooLongError, match="sequence length 129 exceeds .* 128"):
        run(model, n=129)


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    model = build_model(tiny_config(attention="flurka-rfa")).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ids = torch.randint(0, 512, (8, 16))
    labels = (ids[:, 1] % 2).long()
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(ids, torch.ones_like(ids)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert model.encoder.layers[0].attention.E_K.grad is not None


@pytest.mark.parametrize("task", ENCODER_TASKS)
@pytest.mark.parametrize("attention", ["flurka-rfa", "kernel-favor", "linformer"])
def test_save_load_is_bit_identical(tmp_path, task, attention):
    model = build_model(tiny_config(task=task, attention=attention, seed=3))
    save_pretrained(model, tmp_path / "ckpt")
    loaded = load_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config
    assert torch.equal(run(model), run(loaded))


def test_random_features_fixed_in_eval():
    model = build_model(tiny_config(attention="flurka-favor"))
    before = model.encoder.layers[0].attention.feature_proj.clone()
    run(model)
    run(model)
    assert torch.equal(before, model.encoder.layers[0].attention.feature_proj)
    again = build_model(tiny_config(attention="flurka-favor"))
    assert torch.equal(before, again.encoder.layers[0].attention.feature_proj)


def test_checkpoint_mismatch_names_tensors(tmp_path):
    save_pretrained(build_model(tiny_config(attention="flurka-elu")), tmp_path / "c")
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    cfg["low_rank"] = 8
    (tmp_path / "c" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"encoder.layers.0.attention.E_K: shape \(16, 128\) in file, \(8, 128\)"):
        load_pretrained(tmp_path / "c")
    state = load_file(tmp_path / "c" / "model.safetensors")
    del state["classifier.weight"]
    save_file(state, tmp_path / "c" / "model.safetensors")
    with pytest.raises(CheckpointError, match="missing tensors: classifier.weight"):
        load_pretrained(tmp_path / "c")


def test_corrupt_checkpoint_is_refused(tmp_path):
    save_pretrained(build_model(tiny_config()), tmp_path / "c")
    (tmp_path / "c" / "model.safetensors").write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_pretrained(tmp_path / "c")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(tmp_path / "nope")


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(hidden_size=65), "not divisible by num_heads"),
        (dict(low_rank=200), "low_rank=200 exceeds max_seq_len=128"),
        (dict(attention="performer"), "attention='performer' is not allowed; attention must be one of softmax"),
        (dict(task="speech"), "task='speech' is not allowed"),
    ],
)
def test_config_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**changes)


def test_config_json_round_trip(tmp_path):
    c = tiny_config(attention="flurka-rfa", seed=5)
    c.to_json(tmp_path / "c.json")
    assert FlurkaConfig.from_json(tmp_path / "c.json") == c
