"""Strongly typed TensorRT engines with one optimisation profile, a timing cache, an atomic plan file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx

from ..onnx_io import load_onnx
from ..ops.schema import OP_DOMAIN, OP_NAME
from ..passes.prepare_trt import prepare_for_tensorrt
from ..utils import atomic_path
from .availability import import_tensorrt
from .network import check_plugin_layers, flurka_node_names, parse_onnx
from .plugin import load_plugin
from .profiles import InputProfile, default_profiles


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


def build_engine(
    onnx_path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    plugin: str | os.PathLike | None = None,
    shapes: dict[str, str] | None = None,
    max_batch: int = 8,
    timing_cache: str | os.PathLike | None = None,
    allow_fallback: bool = False,
    workspace_mb: int = 1024,
) -> tuple[bytes, list[InputProfile]]:
    """Build (and save to `output` if given) a plan; returns its bytes and the profile used."""
    trt = import_tensorrt()
    model = load_onnx(onnx_path, load_external_data=False)
    expected = flurka_node_names(model)
    profiles = default_profiles(model, max_batch=max_batch, shapes=shapes)
    if expected:
        load_plugin(plugin)
    logger = trt.Logger(trt.Logger.WARNING)
    with _prepared(onnx_path, model) as parse_path:
        builder, network, _parser = parse_onnx(parse_path, logger)
    check_plugin_layers(network, expected, allow_fallback)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    profile = builder.create_optimization_profile()
    for p in profiles:
        profile.set_shape(p.name, p.min, p.opt, p.max)
    config.add_optimization_profile(profile)
    cache_path = Path(timing_cache) if timing_cache else None
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path and cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
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
    return data, profiles
