"""Lower the causal core placeholder (com.flurka::CausalLinearAttentionCore, emitted by
ops.causal.causal_kernel_attention during torch.onnx.export) into a LinearAttention node.

The placeholder already has LinearAttention's inputs and outputs: phi(q), phi(k) [B, T, H*M],
[v, 1] [B, T, H*(dv+1)], past_state [B, H, M, dv+1] -> output [B, T, H*(dv+1)], present_state. Only the
op, its domain and its attributes change (update_rule="linear", scale=1.0, q_num_heads = kv_num_heads = H;
the op's defaults, gated_delta and 1/sqrt(d_k), are wrong for us):

- linear_attention="ort" (default, faster): com.microsoft.LinearAttention, ONNX Runtime's native kernel
  (no function body: ONNX Runtime only).
- linear_attention="onnx": the standard LinearAttention of opset 27 (a function: any runtime with opset 27,
  onnx.reference included). torch exports at opset <= 25, so the model's ai.onnx import is raised to 27 in
  place: the onnx version converter is not used (it drops model-local functions), and every model-local
  function's standard import is raised with it (ONNX requires it to match the model's).
"""

from __future__ import annotations

import onnx
from onnx import helper

from ..ops.causal import CORE_DOMAIN, CORE_NAME

LINEAR_ATTENTION = ("ort", "onnx")
STANDARD_OPSET = 27
ORT_DOMAIN = "com.microsoft"


def _num_heads(node: onnx.NodeProto) -> int:
    for a in node.attribute:
        if a.name == "num_heads":
            return int(a.i)
    raise ValueError(f"{CORE_NAME} node {node.name!r} has no num_heads attribute")


def _set_import(imports: list[onnx.OperatorSetIdProto], domain: str, version: int) -> None:
    for imp in imports:
        if imp.domain == domain or (domain == "" and imp.domain == "ai.onnx"):
            imp.version = max(imp.version, version) if domain == "" else version
            return
    imports.append(helper.make_opsetid(domain, version))


def lower_causal_core(model: onnx.ModelProto, linear_attention: str = "ort") -> tuple[onnx.ModelProto, int]:
    """A copy of `model` with every CausalLinearAttentionCore node rewritten; returns (model, count)."""
    if linear_attention not in LINEAR_ATTENTION:
        raise ValueError(f"unknown linear_attention {linear_attention!r}; allowed: {', '.join(LINEAR_ATTENTION)}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    count = 0
    for node in out.graph.node:
        if node.domain != CORE_DOMAIN or node.op_type != CORE_NAME:
            continue
        h = _num_heads(node)
        del node.attribute[:]
        node.op_type = "LinearAttention"
        node.domain = ORT_DOMAIN if linear_attention == "ort" else ""
        node.attribute.extend([helper.make_attribute("q_num_heads", h), helper.make_attribute("kv_num_heads", h),
                               helper.make_attribute("update_rule", "linear"), helper.make_attribute("scale", 1.0)])
        count += 1
    if not count:
        return out, 0
    if not any(n.domain == CORE_DOMAIN for n in out.graph.node) and not any(f.domain == CORE_DOMAIN
                                                                          for f in out.functions):
        kept = [i for i in out.opset_import if i.domain != CORE_DOMAIN]
        del out.opset_import[:]
        out.opset_import.extend(kept)
    if linear_attention == "ort":
        _set_import(out.opset_import, ORT_DOMAIN, 1)
    else:
        _set_import(out.opset_import, "", STANDARD_OPSET)
        for fn in out.functions:  # a function's standard import must equal the model's
            for imp in fn.opset_import:
                if imp.domain in ("", "ai.onnx"):
                    imp.version = STANDARD_OPSET
        out.ir_version = max(out.ir_version, helper.find_min_ir_version_for(
            [helper.make_opsetid("", STANDARD_OPSET)], ignore_unknown=True))
    return out, count
