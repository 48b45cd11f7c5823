"""prepare-trt: make TensorRT's ONNX parser pick the FlurkaAttention plugin over the function body.

The parser looks a plugin up by (op_type, attribute `plugin_version` (default "1"), attribute
`plugin_namespace` (default "")); a registered plugin wins over a model-local function only when the
node names a plugin_namespace (or the parser flag ENABLE_PLUGIN_OVERRIDE is set). This pass writes
both attributes on every com.flurka::FlurkaAttention node. ONNX Runtime ignores them and still runs
the body, so the prepared file serves both runtimes unless --strip-bodies removes the bodies.
"""

from __future__ import annotations

import onnx
import onnx_ir as ir

from ..ops.schema import OP_DOMAIN, OP_NAME, OP_VERSION, PLUGIN_NAMESPACE

PLUGIN_VERSION = str(OP_VERSION)


def prepare_for_tensorrt(model: onnx.ModelProto, strip_bodies: bool = False) -> tuple[onnx.ModelProto, int]:
    """Returns the prepared model and the number of FlurkaAttention nodes tagged."""
    graph_model = ir.from_proto(model)
    count = 0
    for node in ir.traversal.RecursiveGraphIterator(graph_model.graph):
        if node.domain == OP_DOMAIN and node.op_type == OP_NAME:
            node.attributes["plugin_namespace"] = ir.AttrString("plugin_namespace", PLUGIN_NAMESPACE)
            node.attributes["plugin_version"] = ir.AttrString("plugin_version", PLUGIN_VERSION)
            count += 1
    if strip_bodies:
        for key in [k for k, f in graph_model.functions.items() if f.domain == OP_DOMAIN and f.name == OP_NAME]:
            del graph_model.functions[key]
    return ir.to_proto(graph_model), count
