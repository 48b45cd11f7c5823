"""Parse ONNX into a TensorRT network so that every FlurkaAttention node becomes the plugin, and
check it by walking the network's layers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import onnx

from ..ops.schema import OP_DOMAIN, OP_NAME
from .availability import import_tensorrt


class PluginFallbackError(RuntimeError):
    pass


def flurka_node_names(model: onnx.ModelProto) -> list[str]:
    return [n.name for n in model.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_NAME]


def parse_onnx(path: str | os.PathLike, logger: Any = None, strongly_typed: bool = True) -> tuple[Any, Any, Any]:
    """(builder, network, parser) for the ONNX file; the parser prefers registered plugins over the
    model-local function bodies (ENABLE_PLUGIN_OVERRIDE where this TensorRT has it)."""
    trt = import_tensorrt()
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    override = getattr(trt.OnnxParserFlag, "ENABLE_PLUGIN_OVERRIDE", None)
    if override is not None:
        parser.set_flag(override)
    if not parser.parse_from_file(str(Path(path))):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ValueError(f"TensorRT's ONNX parser rejected {path}:\n  " + "\n  ".join(errors))
    return builder, network, parser


def check_plugin_layers(network: Any, expected: list[str], allow_fallback: bool = False) -> list[str]:
    """Names of the FlurkaAttention nodes that became plugin layers; raise PluginFallbackError naming
    the nodes that fell back to their function body (unless allow_fallback)."""
    trt = import_tensorrt()
    plugin_types = {getattr(trt.LayerType, n) for n in ("PLUGIN_V3", "PLUGIN_V2", "PLUGIN") if hasattr(trt.LayerType, n)}
    plugin_layers = [network.get_layer(i) for i in range(network.num_layers)
                     if network.get_layer(i).type in plugin_types]
    names = [layer.name for layer in plugin_layers]
    missing = [n for n in expected if not any(n and n in layer_name for layer_name in names)]
    if len(plugin_layers) < len(expected) and not missing:
        missing = expected[len(plugin_layers):]
    if missing and not allow_fallback:
        raise PluginFallbackError(
            f"{len(missing)} of {len(expected)} FlurkaAttention nodes did not become the TensorRT plugin and would "
            f"run their function body instead: {', '.join(missing)}. Load the plugin (--plugin) and run "
            "`flurka-export prepare-trt` on the model (or use TensorRT >= 10.10 with ENABLE_PLUGIN_OVERRIDE); "
            "pass --allow-fallback to accept the body"
        )
    return [n for n in expected if n not in missing]
