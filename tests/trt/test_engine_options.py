"""Engines users can move: builder flags, several profiles, plugin serialization, build info; the plugin loader.
TensorRT is not installed here, so the builder config and registry are small recording fakes with TensorRT's
Python API names."""

import argparse
import re
from pathlib import Path
from types import SimpleNamespace

import onnx
import pytest

from flurka_export import export_onnx
from flurka_export.cli.build_engine import options_from_args
from flurka_export.models import build_model
from flurka_export.trt import plugin as plugin_mod
from flurka_export.trt.build_info import BuildInfo, info_path, read_build_info, write_build_info
from flurka_export.trt.engine import EngineOptions, build_info, configure_builder
from flurka_export.trt.profiles import parse_profile_spec, profiles_from_specs
from tests.helpers import tiny_config


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *a, **k: self.calls.append((name, a, k)) or (Recorder() if name.startswith("create") else None)

    def __setattr__(self, name, value):
        if name == "calls":
            object.__setattr__(self, name, value)
        else:
            self.calls.append(("set " + name, (value,), {}))


FAKE_TRT = SimpleNamespace(
    __version__="11.1.0",
    MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
    BuilderFlag=SimpleNamespace(VERSION_COMPATIBLE="VC", EXCLUDE_LEAN_RUNTIME="EXCL"),
    HardwareCompatibilityLevel=SimpleNamespace(NONE="hw-none", AMPERE_PLUS="hw-ampere+", SAME_COMPUTE_CAPABILITY="hw-same"),
)


class FakeBuilder:
    def __init__(self):
        self.profiles = []

    def create_optimization_profile(self):
        prof = Recorder()
        self.profiles.append(prof)
        return prof


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.onnx"
    export_onnx(build_model(tiny_config()), path)
    return onnx.load(path, load_external_data=False)


def test_version_compatible_serializes_the_plugin(text_model, tmp_path):
    profiles = profiles_from_specs(text_model, ["input_ids:1x1,1x32,1x32", "input_ids:1x33,4x64,8x64"])
    config, builder = Recorder(), FakeBuilder()
    options = EngineOptions(version_compatible=True, exclude_lean_runtime=True, hardware_compatibility="ampere+",
                            builder_optimization_level=5, workspace_mb=64)
    options.check()
    configure_builder(FAKE_TRT, builder, config, options, profiles, Path("/x/libflurka_trt_plugin.so"))
    calls = [(c[0], c[1]) for c in config.calls]
    assert ("set_memory_pool_limit", ("WORKSPACE", 64 << 20)) in calls
    assert ("set_flag", ("VC",)) in calls and ("set_flag", ("EXCL",)) in calls
    assert ("set plugins_to_serialize", (["/x/libflurka_trt_plugin.so"],)) in calls
    assert ("set hardware_compatibility_level", ("hw-ampere+",)) in calls
    assert ("set builder_optimization_level", (5,)) in calls
    assert [c[0] for c in calls].count("add_optimization_profile") == 2
    # Two profiles, each setting input_ids and attention_mask (which follows input_ids).
    assert [[(c[1][0], c[1][1:]) for c in p.calls] for p in builder.profiles] == [
        [("input_ids", ((1, 1), (1, 32), (1, 32))), ("attention_mask", ((1, 1), (1, 32), (1, 32)))],
        [("input_ids", ((1, 33), (4, 64), (8, 64))), ("attention_mask", ((1, 33), (4, 64), (8, 64)))]]
    info = build_info("11.1.0", options, profiles, Path("/x/libflurka_trt_plugin.so"))
    assert info.plugin_serialized and info.plugin == "libflurka_trt_plugin.so" and len(info.profiles) == 2
    plan = tmp_path / "m.plan"
    write_build_info(plan, info)
    assert info_path(plan).name == "m.plan.json" and read_build_info(plan) == info


def test_plain_engine_sets_nothing_extra(text_model):
    config, builder = Recorder(), FakeBuilder()
    configure_builder(FAKE_TRT, builder, config, EngineOptions(), profiles_from_specs(text_model, []), None)
    names = [c[0] for c in config.calls]
    assert names == ["set_memory_pool_limit", "add_optimization_profile"]
    assert not build_info("11.1.0", EngineOptions(), [], None).plugin_serialized


def _args(**kw):
    base = dict(version_compatible=False, exclude_lean_runtime=False, no_serialize_plugin=False,
                hardware_compatibility="none", builder_optimization_level=None, workspace_mb=1024)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize("kw, message", [
    (dict(exclude_lean_runtime=True), "--exclude-lean-runtime needs --version-compatible"),
    (dict(hardware_compatibility="volta+"), "unknown --hardware-compatibility 'volta+'"),
    (dict(builder_optimization_level=9), "outside 0..5"),
    (dict(workspace_mb=0), "at least 1"),
])
def test_bad_flags_are_one_sentence(kw, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        options_from_args(_args(**kw))


def test_no_serialize_plugin(text_model):
    options = options_from_args(_args(version_compatible=True, no_serialize_plugin=True))
    assert options.version_compatible and not options.serializes_plugin
    with pytest.raises(ValueError, match="needs --version-compatible"):
        EngineOptions(serialize_plugin=True).check()


def test_profile_specs(text_model):
    assert parse_profile_spec("input_ids:1x1,2x8,4x16") == {"input_ids": "1x1,2x8,4x16"}
    # attention_mask has the dims of input_ids (the family spec): it follows
    assert {p.name: p.max for p in profiles_from_specs(text_model, ["input_ids:1x1,2x8,4x16"])[0]} == {
        "input_ids": (4, 16), "attention_mask": (4, 16)}
    with pytest.raises(ValueError, match="expected NAME:MIN,OPT,MAX"):
        parse_profile_spec("1x1,2x8,4x16")
    with pytest.raises(ValueError, match="exceeds the model's N_max"):
        profiles_from_specs(text_model, ["input_ids:1x1,2x8,4x100000"])


def test_build_info_rejects_foreign_json(tmp_path):
    plan = tmp_path / "m.plan"
    assert read_build_info(plan) is None
    info_path(plan).write_text('{"something": 1}')
    with pytest.raises(ValueError, match="not a flurka-export build info file"):
        read_build_info(plan)
    write_build_info(plan, BuildInfo(tensorrt="10.9.0"))
    assert read_build_info(plan).tensorrt == "10.9.0"


class FakeRegistry:
    """TensorRT's registry as load_plugin uses it: load_library registers what the library's getCreators returns."""

    def __init__(self, library_registers=True):
        self.creators, self.loaded, self.library_registers = [], [], library_registers

    def get_creator(self, name, version, namespace=""):
        return next((c for c in self.creators if (c.name, c.plugin_version, c.plugin_namespace) ==
                     (name, version, namespace)), None)

    @property
    def all_creators(self):
        return self.creators

    def load_library(self, path):
        self.loaded.append(path)
        if self.library_registers:
            self.creators.append(SimpleNamespace(name="FlurkaAttention", plugin_version="1", plugin_namespace="com.flurka"))
        return object()


def test_load_plugin_uses_load_library_once(tmp_path, monkeypatch):
    monkeypatch.setattr(plugin_mod, "_loaded", {})
    lib = tmp_path / "libflurka_trt_plugin.so"
    lib.write_bytes(b"\x7fELF")
    registry = FakeRegistry()
    assert plugin_mod.load_plugin(lib, registry=registry) == lib.resolve()
    assert plugin_mod.load_plugin(lib, registry=registry) == lib.resolve()
    assert registry.loaded == [str(lib.resolve())]  # a second load_library would be a duplicate registration


def test_load_plugin_names_what_is_registered(tmp_path, monkeypatch):
    monkeypatch.setattr(plugin_mod, "_loaded", {})
    lib = tmp_path / "libflurka_trt_plugin.so"
    lib.write_bytes(b"\x7fELF")
    registry = FakeRegistry(library_registers=False)
    registry.creators.append(SimpleNamespace(name="FlurkaAttention", plugin_version="1", plugin_namespace=""))
    with pytest.raises(plugin_mod.PluginNotFound, match=r"namespace 'com.flurka' \(registered: FlurkaAttention v1 ns=''\)"):
        plugin_mod.load_plugin(lib, registry=registry)


def test_timing_cache_from_another_build_is_an_error(tmp_path):
    from flurka_export.trt.engine import _use_timing_cache

    class Config:
        def __init__(self, accept):
            self.accept, self.seen = accept, None

        def create_timing_cache(self, data):
            self.seen = data
            return "cache"

        def set_timing_cache(self, cache, ignore_mismatch):
            assert cache == "cache" and ignore_mismatch is False
            return self.accept

    path = tmp_path / "trt.cache"
    config = Config(True)
    _use_timing_cache(config, path)  # no file yet: an empty cache
    assert config.seen == b""
    path.write_bytes(b"old")
    config = Config(True)
    _use_timing_cache(config, path)
    assert config.seen == b"old"  # reused
    with pytest.raises(ValueError, match="written by another TensorRT version or GPU"):
        _use_timing_cache(Config(False), path)


def test_cli_refuses_bad_flag_combinations_before_tensorrt(tmp_path, capsys):
    from flurka_export.cli import main

    onnx_path = tmp_path / "m.onnx"
    export_onnx(build_model(tiny_config()), onnx_path)
    for extra, message in ((["--exclude-lean-runtime"], "--exclude-lean-runtime needs --version-compatible"),
                           (["--shapes", "input_ids:1x1,1x8,1x8", "--profile", "input_ids:1x1,1x8,1x8"],
                            "either --shapes (one profile) or --profile")):
        assert main(["build-engine", str(onnx_path), "-o", str(tmp_path / "m.plan"), *extra]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "m.plan").exists() and not (tmp_path / "m.plan.json").exists()
