"""Model-local ONNX function bodies of com.flurka::FlurkaAttention, one overload per feature map.

Each body is docs/op-spec.md section 1 step 3 in standard ops: ONNX Runtime runs it, and it documents
the op for any other runtime. Inputs are cast to float32 first, so S, z and den accumulate in float32
whatever T is; the output is cast back to T (CastLike query). The shared steps are written once here;
each feature map's module builds its own body from them (FeatureMap.onnx_body). The exporter and the
fusion pass both attach bodies through `attach_function_bodies`.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import onnx

from .feature_maps import get
from .schema import OP_DOMAIN, OP_NAME, OP_VERSION


@functools.cache
def _library() -> Any:
    """The onnxscript pieces a feature map's body builder uses (imported on first use: onnxscript is slow)."""
    from onnxscript import opset20 as op
    from onnxscript import script
    from onnxscript.values import Opset

    flurka = Opset(OP_DOMAIN, OP_VERSION)

    def flurka_script() -> Any:
        return script(flurka, default_opset=op)

    @script(flurka, default_opset=op)
    def _heads(x, num_heads: int):
        """[B, N, H*d] -> [B, H, N, d], in float32."""
        h = op.Reshape(op.Constant(value_int=num_heads), op.Constant(value_ints=[1]))
        shape = op.Concat(op.Constant(value_ints=[0, 0]), h, op.Constant(value_ints=[-1]), axis=0)
        return op.Transpose(op.Reshape(op.Cast(x, to=1), shape), perm=[0, 2, 1, 3])

    @script(flurka, default_opset=op)
    def _merge(num, den, query):
        """num / den, [B, H, Nq, dv] -> [B, Nq, H*dv], cast to query's type."""
        out = op.Transpose(op.Div(num, den), perm=[0, 2, 1, 3])
        return op.CastLike(op.Reshape(out, op.Constant(value_ints=[0, 0, -1])), query)

    @script(flurka, default_opset=op)
    def _kv_state(phk, v, phq):
        """num = phi(Q) S and t = phi(Q) . z with S = phi(K)^T V, z = sum_j phi(K_j)."""
        s = op.MatMul(op.Transpose(phk, perm=[0, 1, 3, 2]), v)
        z = op.ReduceSum(phk, op.Constant(value_ints=[2]), keepdims=1)
        num = op.MatMul(phq, s)
        t = op.MatMul(phq, op.Transpose(z, perm=[0, 1, 3, 2]))
        return num, t

    return types.SimpleNamespace(op=op, script=flurka_script, heads=_heads, merge=_merge,
                                 kv_state=_kv_state, shared=(_heads, _merge, _kv_state))


@functools.cache
def _inlined(feature_map: str) -> bytes:
    from onnx import helper
    from onnx.inliner import inline_selected_functions

    lib = _library()
    body, helpers = get(feature_map).onnx_body(lib)
    inline = (*lib.shared, *helpers)
    holder = helper.make_model(
        helper.make_graph([], "bodies", [], []),
        functions=[body.to_function_proto()] + [f.to_function_proto() for f in inline],
        opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid(OP_DOMAIN, OP_VERSION)],
    )
    inlined = inline_selected_functions(holder, [(OP_DOMAIN, f.name) for f in inline])
    (fn,) = [f for f in inlined.functions if f.name == body.name]
    return fn.SerializeToString()


def function_proto(feature_map: str, opset: int = 20) -> onnx.FunctionProto:
    """The body of FlurkaAttention for one feature map, as overload `feature_map`, importing `opset`.

    The body uses only ops whose semantics are unchanged from opset 18 on, so its standard-opset
    import is set to the model's (ONNX requires them to match).
    """
    fn = onnx.FunctionProto.FromString(_inlined(feature_map))
    fn.name = OP_NAME
    fn.overload = feature_map
    fn.doc_string = f"FlurkaAttention v{OP_VERSION}, feature_map={feature_map}: reference semantics (docs/op-spec.md)"
    for imp in fn.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = opset
    return fn


def attach_function_bodies(model: onnx.ModelProto, opset: int) -> int:
    """Tag each FlurkaAttention node with its feature-map overload, attach the bodies it needs and
    the com.flurka opset import. Returns the number of FlurkaAttention nodes."""
    used = set()
    count = 0
    for node in model.graph.node:
        if node.domain == OP_DOMAIN and node.op_type == OP_NAME:
            fmap = next(a.s.decode() for a in node.attribute if a.name == "feature_map")
            node.overload = fmap
            used.add(fmap)
            count += 1
    present = {(f.domain, f.name, f.overload) for f in model.functions}
    for fmap in sorted(used):
        if (OP_DOMAIN, OP_NAME, fmap) not in present:
            model.functions.append(function_proto(fmap, opset))
    imports = {i.domain: i for i in model.opset_import}
    if used and OP_DOMAIN not in imports:
        model.opset_import.append(onnx.helper.make_opsetid(OP_DOMAIN, OP_VERSION))
    elif OP_DOMAIN in imports:
        imports[OP_DOMAIN].version = OP_VERSION
    model.ir_version = max(model.ir_version, 10)  # function overloads need IR 10
    return count
