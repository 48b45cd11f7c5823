"""Optimisation profiles computed from the model config (no TensorRT needed)."""

import onnx
import pytest

from flurka_export import export_onnx
from flurka_export.models import build_model
from flurka_export.trt.profiles import default_profiles, parse_shape_spec
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "m.onnx"
    export_onnx(build_model(tiny_config(attention="flurka-elu")), path)
    return onnx.load(path)


def test_text_defaults_bounded_by_n_max(text_model):
    profiles = {p.name: p for p in default_profiles(text_model)}
    assert set(profiles) == {"input_ids", "attention_mask"}
    p = profiles["input_ids"]
    assert (p.min, p.opt, p.max) == ((1, 1), (1, 64), (8, 128))


def test_override_and_refusal(text_model):
    profiles = default_profiles(text_model, shapes={"input_ids": "1x1,2x32,4x100", "attention_mask": "1x1,2x32,4x100"})
    assert profiles[0].max == (4, 100)
    with pytest.raises(ValueError, match="profile max sequence length 129 exceeds the model's N_max 128"):
        default_profiles(text_model, shapes={"input_ids": "1x1,2x32,4x129"})
    with pytest.raises(ValueError, match="unknown inputs \\['pixels'\\]"):
        default_profiles(text_model, shapes={"pixels": "1x1,1x1,1x1"})


def test_export_max_seq_len_is_the_bound(tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(build_model(tiny_config(attention="flurka-elu")), path, max_seq_len=64)
    assert default_profiles(onnx.load(path))[0].max == (8, 64)


def test_image_profiles_are_fixed_spatially(tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(build_model(tiny_config(attention="flurka-favor", task="image")), path)
    (p,) = default_profiles(onnx.load(path), max_batch=16)
    assert (p.name, p.min, p.max) == ("pixel_values", (1, 3, 16, 16), (16, 3, 16, 16))
    with pytest.raises(ValueError, match="fixed \\[C, H, W\\] = \\[3, 16, 16\\]"):
        default_profiles(onnx.load(path), shapes={"pixel_values": "1x3x16x16,1x3x32x32,1x3x32x32"})


@pytest.mark.parametrize("spec,match", [("1x1,2x2", "MIN,OPT,MAX"), ("4x4,2x2,8x8", "min <= opt <= max"),
                                        ("1x1,2x2,3", "same rank")])
def test_bad_shape_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_shape_spec(spec)


def test_token_type_ids_get_a_profile_too(tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(build_model(tiny_config(attention="flurka-elu", type_vocab_size=2)), path)
    profiles = {p.name: p for p in default_profiles(onnx.load(path))}
    assert set(profiles) == {"input_ids", "attention_mask", "token_type_ids"}
    assert profiles["token_type_ids"].max == (8, 128)
