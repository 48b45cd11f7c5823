"""Strongly typed TensorRT engines: optimisation profiles, a reusable timing cache, engines users can move
(version-compatible with the plugin serialized into the plan, hardware-compatible), an atomic plan file and its
build info (build_info.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

from ..onnx_io import load_onnx
from ..ops.schema import OP_DOMAIN, OP_NAME
from ..passes.prepare_trt import prepare_for_tensorrt
from ..utils import atomic_path
from .availability import import_tensorrt
from .build_info import BuildInfo, write_build_info
from .network import check_plugin_layers, flurka_node_names, parse_onnx
from .plugin import load_plugin
from .profiles import InputProfile, default_profiles

# --hardware-compatibility value -> trt.HardwareCompatibilityLevel member
HARDWARE_LEVELS = {"none": "NONE", "ampere+": "AMPERE_PLUS", "same-compute-capability": "SAME_COMPUTE_CAPABILITY"}


@contextlib.contextmanager
def _prepared(onnx_path: str | os.PathLike, model: onnx.ModelProto) -> Iterator[Path]:
    """The path to parse: the file itself if its FlurkaAttention nodes already carry plugin_namespace,
    else a prepare-trt copy beside it (so relative external data still resolves), removed afterwards.
    TensorRT before 10.10 has no ENABLE_PLUGIN_OVERRIDE and needs the attribute."""
    nodes = [n for n in model.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_NAME]
    if all(any(a.name == "plugin_namespace" for a in n.attribute) for n in nodes):
        yield Path(onnx_path)
        return
    prepared, _ = prepare_for_tensorrt(model)
    fd, tmp = tempfile.mkstemp(prefix=".flurka-trt-", suffix=".onnx", dir=Path(onnx_path).parent)
    os.close(fd)
    try:
        onnx.save_model(prepared, tmp)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """Builder settings beyond the profiles. A version-compatible engine carries the plugin library inside the plan
    (plugins_to_serialize) unless serialize_plugin is False, so deployment needs no plugin file or LD_PRELOAD."""

    version_compatible: bool = False
    exclude_lean_runtime: bool = False
    serialize_plugin: bool | None = None  # None: when version_compatible
    hardware_compatibility: str = "none"
    builder_optimization_level: int | None = None
    workspace_mb: int = 1024

    @property
    def serializes_plugin(self) -> bool:
        return self.version_compatible if self.serialize_plugin is None else self.serialize_plugin

    def check(self) -> None:
        if self.exclude_lean_runtime and not self.version_compatible:
            raise ValueError("--exclude-lean-runtime needs --version-compatible")
        if self.serialize_plugin and not self.version_compatible:
            raise ValueError("serializing the plugin into the plan needs --version-compatible (TensorRT serializes "
                             "plugin libraries with version-compatible engines only)")
        if self.hardware_compatibility not in HARDWARE_LEVELS:
            raise ValueError(f"unknown --hardware-compatibility {self.hardware_compatibility!r}; allowed: "
                             f"{', '.join(HARDWARE_LEVELS)}")
        level = self.builder_optimization_level
        if level is not None and not 0 <= level <= 5:
            raise ValueError(f"--builder-optimization-level {level} is outside 0..5")
        if self.workspace_mb < 1:
            raise ValueError(f"--workspace-mb {self.workspace_mb} must be at least 1")


def configure_builder(trt: Any, builder: Any, config: Any, options: EngineOptions,
                      profiles: list[list[InputProfile]], plugin_path: Path | None) -> None:
    """Apply `options` and one optimisation profile per group of `profiles` to the builder config."""
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.exclude_lean_runtime:
        config.set_flag(trt.BuilderFlag.EXCLUDE_LEAN_RUNTIME)
    if plugin_path is not None and options.serializes_plugin:
        config.plugins_to_serialize = [str(plugin_path)]
    if options.hardware_compatibility != "none":
        levels = getattr(trt, "HardwareCompatibilityLevel", None)
        if levels is None:
            raise ValueError(f"TensorRT {trt.__version__} has no hardware compatibility levels")
        config.hardware_compatibility_level = getattr(levels, HARDWARE_LEVELS[options.hardware_compatibility])
    if options.builder_optimization_level is not None:
        config.builder_optimization_level = options.builder_optimization_level
    for group in profiles:
        profile = builder.create_optimization_profile()
        for p in group:
            profile.set_shape(p.name, p.min, p.opt, p.max)
        config.add_optimization_profile(profile)


def _use_timing_cache(config: Any, path: Path | None) -> None:
    """Start from the cache file when it exists (reuse across builds); a cache from another TensorRT or GPU is an
    error rather than a silent full re-timing."""
    cache = config.create_timing_cache(path.read_bytes() if path and path.is_file() else b"")
    if config.set_timing_cache(cache, ignore_mismatch=False) is False:
        raise ValueError(f"timing cache {path} was written by another TensorRT version or GPU: pass a new "
                         "--timing-cache path")


def check_family(model: onnx.ModelProto) -> None:
    """ValueError, in one line, when the exported model's family has no TensorRT path (its spec says why)."""
    from ..models.exported import ExportedModel

    config = ExportedModel.read(model).config
    why = config.spec.trt_unsupported(config) if config is not None else None
    if why:
        raise ValueError(f"TensorRT cannot build the {config.spec.family} family ({config.task}, {config.attention}): "
                         f"{why}")


def build_engine(
    onnx_path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    plugin: str | os.PathLike | None = None,
    shapes: dict[str, str] | None = None,
    profiles: list[list[InputProfile]] | None = None,
    max_batch: int = 8,
    timing_cache: str | os.PathLike | None = None,
    allow_fallback: bool = False,
    workspace_mb: int = 1024,
    options: EngineOptions | None = None,
) -> tuple[bytes, list[list[InputProfile]]]:
    """Build (and save to `output` if given, with its build info beside it) a plan; returns its bytes and the
    profiles used: `profiles` (one group per optimisation profile), else one from `shapes` / the defaults."""
    options = options or EngineOptions(workspace_mb=workspace_mb)
    options.check()
    model = load_onnx(onnx_path, load_external_data=False)
    check_family(model)  # before TensorRT is even looked for: the answer does not depend on it
    trt = import_tensorrt()
    expected = flurka_node_names(model)
    profiles = profiles or [default_profiles(model, max_batch=max_batch, shapes=shapes)]
    plugin_path = load_plugin(plugin) if expected else None
    logger = trt.Logger(trt.Logger.WARNING)
    with _prepared(onnx_path, model) as parse_path:
        builder, network, _parser = parse_onnx(parse_path, logger)
    check_plugin_layers(network, expected, allow_fallback)
    config = builder.create_builder_config()
    configure_builder(trt, builder, config, options, profiles, plugin_path)
    cache_path = Path(timing_cache) if timing_cache else None
    _use_timing_cache(config, cache_path)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    data = bytes(plan)
    if cache_path:
        with atomic_path(cache_path) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    if output:
        with atomic_path(output) as tmp:
            tmp.write_bytes(data)
        write_build_info(output, build_info(trt.__version__, options, profiles, plugin_path))
    return data, profiles


def build_info(version: str, options: EngineOptions, profiles: list[list[InputProfile]],
               plugin_path: Path | None) -> BuildInfo:
    return BuildInfo(
        tensorrt=version, version_compatible=options.version_compatible,
        exclude_lean_runtime=options.exclude_lean_runtime,
        plugin_serialized=plugin_path is not None and options.serializes_plugin,
        plugin=plugin_path.name if plugin_path else None, hardware_compatibility=options.hardware_compatibility,
        builder_optimization_level=options.builder_optimization_level,
        profiles=[[{"name": p.name, "min": list(p.min), "opt": list(p.opt), "max": list(p.max)} for p in group]
                  for group in profiles],
    )
