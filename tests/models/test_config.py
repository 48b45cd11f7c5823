"""FlurkaConfig validation: every field's type and range, one line naming the field, the value and what is allowed."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flurka_export.models import (
    CheckpointError,
    ConfigError,
    FlurkaConfig,
    build_model,
    load_pretrained,
    save_pretrained,
)
from flurka_export.models.config import ATTENTION_KINDS, TASKS
from flurka_export.models.config_rules import field_rules
from tests.helpers import tiny_config


def test_every_field_has_a_rule():
    names = {f.name for f in dataclasses.fields(FlurkaConfig)}
    assert names == set(field_rules(TASKS, ATTENTION_KINDS))


BAD_VALUES = [
    ("eps", "small", "eps must be a finite number >= 0"),
    ("eps", float("nan"), "eps must be a finite number >= 0"),
    ("stabilizer", -1.0, "stabilizer must be a finite number >= 0"),
    ("dropout", 1.0, r"dropout must be a number in \[0, 1\)"),
    ("layer_norm_eps", 0, "layer_norm_eps must be a finite number > 0"),
    ("num_layers", 0, "num_layers must be an integer >= 1"),
    ("num_heads", 2.0, "num_heads must be an integer >= 1"),
    ("hidden_size", True, "hidden_size must be an integer >= 1"),
    ("intermediate_size", "4x", "intermediate_size must be an integer >= 1 or null"),
    ("seed", -3, "seed must be an integer >= 0"),
    ("type_vocab_size", -1, "type_vocab_size must be an integer >= 0"),
    ("hidden_act", "gelu_erf", "hidden_act must be one of gelu, gelu_tanh, relu, silu"),
    ("pre_norm", "yes", "pre_norm must be true or false or null"),
    ("mask_keys_in_attention", 1, "mask_keys_in_attention must be true or false"),
    ("tie_word_embeddings", None, "tie_word_embeddings must be true or false"),
    ("position_offset", 1.5, "position_offset must be an integer >= 0"),
    ("task", None, "task must be one of classify, mlm, encoder, image"),
]


@pytest.mark.parametrize("field,value,message", BAD_VALUES)
def test_bad_value_is_one_line_naming_field_value_and_range(field, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        tiny_config(**{field: value})
    text = str(info.value)
    assert "\n" not in text and f"{field}={value!r}" in text


def test_aliases_and_number_widening():
    c = tiny_config(hidden_act="gelu_new", mlm_act="gelu_pytorch_tanh", eps=0, dropout=0)
    assert c.hidden_act == "gelu_tanh" and c.mlm_act == "gelu_tanh"
    assert isinstance(c.eps, float) and c.eps == 0.0
    assert tiny_config(hidden_act="swish").hidden_act == "silu"


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda cfg: cfg.update(eps="small"), r"config.json: eps='small' is not allowed; eps must be a finite number"),
        (lambda cfg: cfg.update(colour="blue"), r"config.json: unknown field 'colour'; known fields: "),
        (lambda cfg: cfg.update(num_heads=[2]), r"config.json: num_heads=\[2\] is not allowed"),
    ],
)
def test_malformed_config_json_names_file_and_field(tmp_path, edit, message):
    save_pretrained(build_model(tiny_config()), tmp_path / "c")
    path = tmp_path / "c" / "config.json"
    cfg = json.loads(path.read_text())
    edit(cfg)
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=message) as info:
        load_pretrained(tmp_path / "c")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_bad_json_and_non_object(tmp_path):
    save_pretrained(build_model(tiny_config()), tmp_path / "c")
    path = tmp_path / "c" / "config.json"
    path.write_text('{"task": "classify",')
    with pytest.raises(ConfigError, match=r"config.json is not valid JSON: .*line 1"):
        load_pretrained(tmp_path / "c")
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold a JSON object of FlurkaConfig fields, not list"):
        load_pretrained(tmp_path / "c")
    assert issubclass(ConfigError, ValueError) and not issubclass(ConfigError, CheckpointError)


def test_cli_prints_one_line(tmp_path, capsys):
    from flurka_export.cli.main import main

    save_pretrained(build_model(tiny_config()), tmp_path / "c")
    path = tmp_path / "c" / "config.json"
    cfg = json.loads(path.read_text())
    cfg["eps"] = "small"
    path.write_text(json.dumps(cfg))
    assert main(["export", str(tmp_path / "c"), "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eps='small'" in err[0] and "config.json" in err[0]
    assert not (tmp_path / "m.onnx").exists()


def test_old_checkpoints_keep_loading(tmp_path):
    # A config.json written before the real-checkpoint fields existed: the defaults give the same model.
    model = build_model(tiny_config(task="mlm"))
    save_pretrained(model, tmp_path / "c")
    path = tmp_path / "c" / "config.json"
    cfg = json.loads(path.read_text())
    for new in ("type_vocab_size", "hidden_act", "mlm_act", "pre_norm", "position_offset", "pooler",
                "tie_word_embeddings", "mlm_transform", "mask_keys_in_attention"):
        del cfg[new]
    path.write_text(json.dumps(cfg))
    loaded = load_pretrained(tmp_path / "c")
    assert loaded.config == model.config


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=True)
                           | st.text(max_size=8), lambda inner: st.lists(inner, max_size=2), max_leaves=3)


@settings(max_examples=150, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(sorted(f.name for f in dataclasses.fields(FlurkaConfig)) + ["bogus"]),
                               JSON_VALUES, max_size=3))
def test_random_config_json_loads_or_fails_in_one_config_error_line(tmp_path_factory, changes):
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    data = tiny_config().to_dict()
    data.update(changes)
    path.write_text(json.dumps(data))
    try:
        config = FlurkaConfig.from_json(path)
    except ConfigError as e:
        assert "\n" not in str(e) and str(path) in str(e)
    else:
        build_model(config)  # a config that validates builds
