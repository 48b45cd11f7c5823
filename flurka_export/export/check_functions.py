"""`inspect --check`: has something stripped our FlurkaAttention nodes of their bodies, overloads or opset?

Each finding names the tool that usually causes it (checked with onnx 1.23, onnxruntime 1.32, onnxslim
0.1): saving an ORT-optimized model or quant_pre_process inlines the nodes, onnx.version_converter drops
the functions, onnxslim clears the overload names and rewrites the body.
"""

from __future__ import annotations

import json

import onnx

from ..onnx_io import META_ATTENTION_OP, META_CONFIG, metadata
from ..ops.schema import OP_DOMAIN, OP_NAME

INLINED = ("the FlurkaAttention nodes were inlined into standard ops: saving an ONNX Runtime-optimized model "
           "(SessionOptions.optimized_model_filepath) or onnxruntime.quantization.quant_pre_process does this; "
           "re-export from the checkpoint and use `flurka-export optimize` (--quantize int8) instead")
NO_BODIES = ("the function bodies are gone, so ONNX Runtime cannot run the nodes: onnx.version_converter drops "
             "model-local functions; use `flurka-export export --opset N` to change the opset instead")
NO_OVERLOAD = ("the FlurkaAttention nodes lost their overload names (the feature map's body is chosen by it): "
               "onnxslim clears them; re-export from the checkpoint and use `flurka-export optimize` rather than onnxslim")
# Where ORT wrote the file itself: it lists every domain it knows.
ORT_SAVED_DOMAINS = frozenset({"com.microsoft.nchwc", "ai.onnx.training", "org.pytorch.aten"})


def _expects_flurka_nodes(model: onnx.ModelProto) -> bool:
    props = metadata(model)
    if props.get(META_ATTENTION_OP, "custom") != "custom" or META_CONFIG not in props:
        return False
    try:
        attention = json.loads(props[META_CONFIG]).get("attention", "")
    except ValueError:
        return False
    return attention.startswith(("kernel-", "flurka-"))


def _plugin_only(node: onnx.NodeProto) -> bool:
    return any(a.name == "plugin_namespace" for a in node.attribute)


def check_flurka_functions(model: onnx.ModelProto) -> list[str]:
    """Problems found, one sentence each (empty: the nodes, overloads, bodies and opset import are intact).

    Nodes tagged by `prepare-trt --strip-bodies` (plugin_namespace set, no bodies) are not a problem:
    that file is meant for TensorRT with the plugin.
    """
    nodes = [n for n in model.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_NAME]
    std_opset = next((i.version for i in model.opset_import if i.domain in ("", "ai.onnx")), None)
    imports = {i.domain for i in model.opset_import}
    if not nodes:
        if _expects_flurka_nodes(model):
            saved_by_ort = " (the opset list shows ONNX Runtime wrote this file)" if imports & ORT_SAVED_DOMAINS else ""
            return [f"no FlurkaAttention nodes although the model was exported with them{saved_by_ort}; {INLINED}"]
        return []
    problems = []
    bodies = {f.overload: f for f in model.functions if f.domain == OP_DOMAIN and f.name == OP_NAME}
    if OP_DOMAIN not in imports:
        problems.append(f"the {OP_DOMAIN} opset import is missing, so the nodes cannot be resolved; the tool that "
                        f"last wrote the file rebuilt the opset list (re-export, or add {OP_DOMAIN} version 1)")
    if any(not n.overload for n in nodes):
        problems.append(NO_OVERLOAD)
    elif not bodies:
        if not all(_plugin_only(n) for n in nodes):
            problems.append(NO_BODIES)
    else:
        missing = sorted({n.overload for n in nodes} - set(bodies))
        if missing:
            problems.append(f"no function body for overload(s) {', '.join(missing)}; {NO_BODIES}")
    for overload, fn in sorted(bodies.items()):
        body_opset = next((i.version for i in fn.opset_import if i.domain in ("", "ai.onnx")), None)
        if std_opset is not None and body_opset is not None and body_opset != std_opset:
            problems.append(f"the body [{overload}] imports opset {body_opset} but the model opset {std_opset}: the "
                            "model was converted without regenerating the bodies (onnx.version_converter); use "
                            "`flurka-export export --opset N`")
    return problems


def check_loads_in_ort(model: onnx.ModelProto) -> str | None:
    """None if ONNX Runtime (CPU) builds a session for the model, else its error in one line."""
    from ..runtimes.ort_runner import make_session

    try:
        make_session(model.SerializeToString(), ["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        return f"ONNX Runtime cannot load the model: {str(e).splitlines()[0][:300]}"
    return None
