"""Expose per-layer tensors of an exported model as graph outputs, under the names TorchRunner uses.

`layer{i}.attention` is the attention core's output (the FlurkaAttention node's output, or the
input of the output projection for softmax/linformer); `layer{i}.output` is the layer's output.
Layers are found from the exporter's name scopes (node metadata), FlurkaAttention nodes by order.
"""

from __future__ import annotations

import ast
import re

import onnx

from ..ops.schema import OP_DOMAIN, OP_NAME

_LAYER = re.compile(r"^(?:encoder\.)?layers\.(\d+)$")
_ATTN_OUT = re.compile(r"^(?:encoder\.)?layers\.(\d+)\.attention\.out$")


def _scopes(node: onnx.NodeProto) -> list[str]:
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                return list(ast.literal_eval(p.value))
            except (ValueError, SyntaxError):
                return []
    return []


def find_layer_tensors(model: onnx.ModelProto) -> dict[str, str]:
    """Canonical name -> ONNX value name."""
    found: dict[str, str] = {}
    flurka = [n for n in model.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_NAME]
    for i, node in enumerate(flurka):
        found[f"layer{i}.attention"] = node.output[0]
    for node in model.graph.node:
        for scope in _scopes(node):
            m = _LAYER.match(scope)
            if m:  # the last node of a layer's scope produces the layer's output
                found[f"layer{m.group(1)}.output"] = node.output[0]
            m = _ATTN_OUT.match(scope)
            if m and f"layer{m.group(1)}.attention" not in found:
                found[f"layer{m.group(1)}.attention"] = node.input[0]
    return found


def with_layer_outputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """A copy of the model whose graph outputs also include every per-layer tensor found."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    mapping = find_layer_tensors(copy)
    existing = {o.name for o in copy.graph.output}
    for value in mapping.values():
        if value not in existing:
            copy.graph.output.append(onnx.ValueInfoProto(name=value))
            existing.add(value)
    return copy, mapping
