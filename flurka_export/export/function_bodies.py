"""Model-local ONNX function bodies of com.flurka::FlurkaAttention, one overload per feature map.

Each body is SPEC section 1 step 3 in standard ops: ONNX Runtime runs it, and it documents the op
for any other runtime. Inputs are cast to float32 first, so S, z and den accumulate in float32
whatever T is; the output is cast back to T (CastLike query).
"""

from __future__ import annotations

import functools

import onnx
import onnx.inliner
from onnx import helper
from onnxscript import FLOAT, script
from onnxscript import opset20 as op
from onnxscript.values import Opset

from ..ops.feature_maps import FAVOR_EPS, RFA_DEN_MAX, RFA_DEN_MIN, RFA_NORM_EPS, RFA_SCALE
from ..ops.schema import OP_DOMAIN, OP_NAME, OP_VERSION

flurka = Opset(OP_DOMAIN, OP_VERSION)

# The underscore helpers are written once and inlined into each body by `function_proto`.


@script(flurka, default_opset=op)
def _heads(x: FLOAT, num_heads: int) -> FLOAT:
    """[B, N, H*d] -> [B, H, N, d], in float32."""
    h = op.Reshape(op.Constant(value_int=num_heads), op.Constant(value_ints=[1]))
    shape = op.Concat(op.Constant(value_ints=[0, 0]), h, op.Constant(value_ints=[-1]), axis=0)
    return op.Transpose(op.Reshape(op.Cast(x, to=1), shape), perm=[0, 2, 1, 3])


@script(flurka, default_opset=op)
def _merge(num: FLOAT, den: FLOAT, query: FLOAT) -> FLOAT:
    """num / den, [B, H, Nq, dv] -> [B, Nq, H*dv], cast to query's type."""
    out = op.Transpose(op.Div(num, den), perm=[0, 2, 1, 3])
    return op.CastLike(op.Reshape(out, op.Constant(value_ints=[0, 0, -1])), query)


@script(flurka, default_opset=op)
def _kv_state(phk: FLOAT, v: FLOAT, phq: FLOAT) -> tuple[FLOAT, FLOAT]:
    """num = phi(Q) S and t = phi(Q) . z with S = phi(K)^T V, z = sum_j phi(K_j)."""
    s = op.MatMul(op.Transpose(phk, perm=[0, 1, 3, 2]), v)
    z = op.ReduceSum(phk, op.Constant(value_ints=[2]), keepdims=1)
    num = op.MatMul(phq, s)
    t = op.MatMul(phq, op.Transpose(z, perm=[0, 1, 3, 2]))
    return num, t


@script(flurka, default_opset=op)
def FlurkaAttentionRelu(query: FLOAT, key: FLOAT, value: FLOAT, num_heads: int, stabilizer: float = 1e-3) -> FLOAT:
    stab = op.Constant(value_float=stabilizer)
    phq = op.Add(op.Relu(_heads(query, num_heads)), stab)
    phk = op.Add(op.Relu(_heads(key, num_heads)), stab)
    num, t = _kv_state(phk, _heads(value, num_heads), phq)
    return _merge(num, t, query)


@script(flurka, default_opset=op)
def FlurkaAttentionElu(query: FLOAT, key: FLOAT, value: FLOAT, num_heads: int, eps: float = 1e-6) -> FLOAT:
    one = op.Constant(value_float=1.0)
    phq = op.Add(op.Elu(_heads(query, num_heads)), one)
    phk = op.Add(op.Elu(_heads(key, num_heads)), one)
    num, t = _kv_state(phk, _heads(value, num_heads), phq)
    return _merge(num, op.Add(t, op.Constant(value_float=eps)), query)


@script(flurka, default_opset=op)
def _rfa_phi(x: FLOAT, w_t: FLOAT) -> FLOAT:
    norm = op.ReduceL2(x, op.Constant(value_ints=[-1]), keepdims=1)
    u = op.MatMul(op.Div(x, op.Add(norm, op.Constant(value_float=RFA_NORM_EPS))), w_t)
    return op.Mul(op.Concat(op.Sin(u), op.Cos(u), axis=-1), op.Constant(value_float=RFA_SCALE))


@script(flurka, default_opset=op)
def FlurkaAttentionRfa(query: FLOAT, key: FLOAT, value: FLOAT, feature_proj: FLOAT, num_heads: int) -> FLOAT:
    w_t = op.Transpose(op.Cast(feature_proj, to=1), perm=[0, 2, 1])  # [H, d, P]
    phq = _rfa_phi(_heads(query, num_heads), w_t)
    phk = _rfa_phi(_heads(key, num_heads), w_t)
    num, t = _kv_state(phk, _heads(value, num_heads), phq)
    den = op.Clip(op.Abs(t), op.Constant(value_float=RFA_DEN_MIN), op.Constant(value_float=RFA_DEN_MAX))
    return _merge(num, den, query)


@script(flurka, default_opset=op)
def _favor_u(x: FLOAT, w_t: FLOAT) -> tuple[FLOAT, FLOAT]:
    """u = W x' and |x'|^2 / 2 for x' = x d^(-1/4)."""
    d = op.Cast(op.Shape(x, start=-1), to=1)
    xs = op.Mul(x, op.Pow(d, op.Constant(value_float=-0.25)))
    sq = op.Mul(op.ReduceSum(op.Mul(xs, xs), op.Constant(value_ints=[-1]), keepdims=1), op.Constant(value_float=0.5))
    return op.MatMul(xs, w_t), sq


@script(flurka, default_opset=op)
def FlurkaAttentionFavor(query: FLOAT, key: FLOAT, value: FLOAT, feature_proj: FLOAT, num_heads: int) -> FLOAT:
    w_t = op.Transpose(op.Cast(feature_proj, to=1), perm=[0, 2, 1])  # [H, d, P]
    inv_sqrt_p = op.Reciprocal(op.Sqrt(op.Cast(op.Shape(feature_proj, start=1, end=2), to=1)))
    floor = op.Constant(value_float=FAVOR_EPS)
    uq, sqq = _favor_u(_heads(query, num_heads), w_t)
    cq = op.ReduceMax(uq, op.Constant(value_ints=[-1]), keepdims=1)  # per query row
    phq = op.Mul(op.Add(op.Exp(op.Sub(op.Sub(uq, sqq), cq)), floor), inv_sqrt_p)
    uk, sqk = _favor_u(_heads(key, num_heads), w_t)
    ck = op.ReduceMax(uk, op.Constant(value_ints=[2, 3]), keepdims=1)  # over the (batch, head) key block
    phk = op.Mul(op.Add(op.Exp(op.Sub(op.Sub(uk, sqk), ck)), floor), inv_sqrt_p)
    num, t = _kv_state(phk, _heads(value, num_heads), phq)
    return _merge(num, t, query)


_BODIES = {
    "relu": FlurkaAttentionRelu,
    "elu": FlurkaAttentionElu,
    "rfa": FlurkaAttentionRfa,
    "favor": FlurkaAttentionFavor,
}


_HELPERS = (_heads, _merge, _kv_state, _rfa_phi, _favor_u)


@functools.cache
def _inlined(feature_map: str) -> bytes:
    holder = helper.make_model(
        helper.make_graph([], "bodies", [], []),
        functions=[_BODIES[feature_map].to_function_proto()] + [f.to_function_proto() for f in _HELPERS],
        opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid(OP_DOMAIN, OP_VERSION)],
    )
    inlined = onnx.inliner.inline_selected_functions(holder, [(OP_DOMAIN, f.name) for f in _HELPERS])
    (fn,) = [f for f in inlined.functions if f.name == _BODIES[feature_map].name]
    return fn.SerializeToString()


def function_proto(feature_map: str, opset: int = 20) -> onnx.FunctionProto:
    """The body of FlurkaAttention for one feature map, as overload `feature_map`, importing `opset`.

    The body uses only ops whose semantics are unchanged from opset 18 on, so its standard-opset
    import is set to the model's (ONNX requires them to match).
    """
    fn = onnx.FunctionProto.FromString(_inlined(feature_map))
    fn.name = OP_NAME
    fn.overload = feature_map
    fn.doc_string = f"FlurkaAttention v{OP_VERSION}, feature_map={feature_map}: reference semantics (SPEC section 1)"
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
        model.opset_import.append(helper.make_opsetid(OP_DOMAIN, OP_VERSION))
    elif OP_DOMAIN in imports:
        imports[OP_DOMAIN].version = OP_VERSION
    model.ir_version = max(model.ir_version, 10)  # function overloads need IR 10
    return count
