"""Fusion: decomposed FlurkaAttention subgraphs (as `export --attention-op decomposed` emits them, and as
any exporter tracing the reference op emits them) -> one com.flurka::FlurkaAttention node.

One onnxscript rewrite rule per feature map, each with and without the float32 casts that
fp16/bf16 models carry around the core. `check` reads the constants (stabilizer, eps, the random
feature matrix, the head count) and refuses a match whose constants differ from SPEC section 1.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnx_ir as ir
from onnxscript import rewriter
from onnxscript.rewriter import pattern

from ..ops.feature_maps import FAVOR_EPS, FEATURE_MAPS, RFA_DEN_MAX, RFA_DEN_MIN, RFA_NORM_EPS, RFA_SCALE
from ..ops.schema import OP_DOMAIN, OP_NAME


def _const(value: ir.Value | None) -> np.ndarray | None:
    if value is None:
        return None
    tensor = value.const_value
    if tensor is None and value.producer() is not None and value.producer().op_type == "Constant":
        attr = next(iter(value.producer().attributes.values()))
        tensor = attr.value if isinstance(attr.value, ir.TensorProtocol) else None
    return None if tensor is None else np.asarray(tensor.numpy())


def _scalar(value: ir.Value | None) -> float | None:
    arr = _const(value)
    return float(arr.reshape(-1)[0]) if arr is not None and arr.size == 1 else None


def _axes(value: ir.Value | None) -> tuple[int, ...] | None:
    arr = _const(value)
    return None if arr is None else tuple(int(a) for a in arr.reshape(-1))


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0)


def _head_shape(shape: ir.Value) -> tuple[int, int] | None:
    """(H, d) from the [B, N, H, d] target of the head-splitting Reshape."""
    arr = _const(shape)
    if arr is not None and arr.size == 4:
        return int(arr[2]), int(arr[3])
    node = shape.producer()
    if node is not None and node.op_type == "Concat" and len(node.inputs) == 4:
        h, d = _scalar(node.inputs[2]), _scalar(node.inputs[3])
        if h is not None and d is not None:
            return int(h), int(d)
    return None


class FlurkaAttentionFusion(pattern.RewriteRuleClassBase):
    def __init__(self, feature_map: str, cast_io: bool) -> None:
        super().__init__(f"FuseFlurkaAttention[{feature_map}{', casts' if cast_io else ''}]")
        self.feature_map = feature_map
        self.cast_io = cast_io
        self._attrs: dict = {}
        self._proj: np.ndarray | None = None

    # -- pattern -----------------------------------------------------------------------------------
    def _heads(self, op, x, shape):  # noqa: ANN001, ANN202
        if self.cast_io:
            x = op.Cast(x, to=onnx.TensorProto.FLOAT)
        return op.Transpose(op.Reshape(x, shape), perm=[0, 2, 1, 3])

    def _phi(self, op, x, c, w_t, is_query):  # noqa: ANN001, ANN202
        fm = self.feature_map
        if fm == "relu":
            return op.Add(op.Relu(x), c["stab_q" if is_query else "stab_k"])
        if fm == "elu":
            return op.Add(op.Elu(x), c["one_q" if is_query else "one_k"])
        if fm == "rfa":
            norm = op.ReduceL2(x, c["l2_axes"], keepdims=1)
            u = op.MatMul(op.Div(x, op.Add(norm, c["l2_eps"])), w_t)
            return op.Mul(op.Concat(op.Sin(u), op.Cos(u), axis=-1), c["rfa_scale"])
        # favor
        s = "q" if is_query else "k"
        xs = op.Mul(x, c[f"xs_scale_{s}"])
        sq = op.Mul(op.ReduceSum(op.Mul(xs, xs), c[f"sq_axes_{s}"], keepdims=1), c[f"half_{s}"])
        u = op.MatMul(xs, w_t)
        cmax = op.ReduceMax(u, c[f"max_axes_{s}"], keepdims=1)
        return op.Div(op.Add(op.Exp(op.Sub(op.Sub(u, sq), cmax)), c[f"floor_{s}"]), c[f"sqrt_p_{s}"])

    def pattern(self, op, query, key, value, shape_q, shape_k, shape_v, out_shape, z_axes,  # noqa: ANN001, ANN201
                den_a, den_b, w_t, stab_q, stab_k, one_q, one_k, l2_axes, l2_eps, rfa_scale,
                xs_scale_q, xs_scale_k, sq_axes_q, sq_axes_k, half_q, half_k, max_axes_q, max_axes_k,
                floor_q, floor_k, sqrt_p_q, sqrt_p_k, out_type):
        c = dict(locals())
        phq = self._phi(op, self._heads(op, query, shape_q), c, w_t, True)
        phk = self._phi(op, self._heads(op, key, shape_k), c, w_t, False)
        s = op.MatMul(op.Transpose(phk, perm=[0, 1, 3, 2]), self._heads(op, value, shape_v))
        z = op.ReduceSum(phk, z_axes, keepdims=1)
        num = op.MatMul(phq, s)
        t = op.MatMul(phq, op.Transpose(z, perm=[0, 1, 3, 2]))
        if self.feature_map == "elu":
            t = op.Add(t, den_a)
        elif self.feature_map == "rfa":
            t = op.Clip(op.Abs(t), den_a, den_b)
        out = op.Reshape(op.Transpose(op.Div(num, t), perm=[0, 2, 1, 3]), out_shape)
        return op.Cast(out, to=out_type) if self.cast_io else out

    # -- check -------------------------------------------------------------------------------------
    def check(self, context, query, shape_q, shape_k, shape_v, z_axes, **b) -> pattern.MatchResult:  # noqa: ANN001
        result = pattern.MatchResult()
        heads = {_head_shape(s) for s in (shape_q, shape_k)}
        if len(heads) != 1 or None in heads:
            return result.fail("cannot read the head count from the head-splitting Reshape")
        (num_heads, head_dim), = heads
        if _axes(z_axes) not in ((-2,), (2,)):
            return result.fail("z is not a sum over the key axis")
        fm = self.feature_map
        attrs: dict = {"num_heads": num_heads, "feature_map": fm}
        self._proj = None
        if fm == "relu":
            stab = _scalar(b["stab_q"])
            if stab is None or not _close(_scalar(b["stab_k"]), stab):
                return result.fail("relu stabilizer is not one scalar constant")
            attrs["stabilizer"] = stab
        elif fm == "elu":
            eps = _scalar(b["den_a"])
            if not (_close(_scalar(b["one_q"]), 1.0) and _close(_scalar(b["one_k"]), 1.0)) or eps is None:
                return result.fail("not elu(x) + 1 with a constant eps")
            attrs["eps"] = eps
        elif fm == "rfa":
            ok = (_close(_scalar(b["l2_eps"]), RFA_NORM_EPS) and _close(_scalar(b["rfa_scale"]), RFA_SCALE)
                  and _close(_scalar(b["den_a"]), RFA_DEN_MIN) and _close(_scalar(b["den_b"]), RFA_DEN_MAX)
                  and _axes(b["l2_axes"]) in ((-1,), (3,)))
            if not ok:
                return result.fail("rfa constants differ from SPEC section 1")
        else:
            for s, max_axes in (("q", ((-1,), (3,))), ("k", ((-2, -1), (2, 3)))):
                ok = (_close(_scalar(b[f"xs_scale_{s}"]), head_dim ** -0.25) and _close(_scalar(b[f"half_{s}"]), 0.5)
                      and _close(_scalar(b[f"floor_{s}"]), FAVOR_EPS) and _axes(b[f"max_axes_{s}"]) in max_axes
                      and _axes(b[f"sq_axes_{s}"]) in ((-1,), (3,)))
                if not ok:
                    return result.fail(f"favor constants ({s}) differ from SPEC section 1")
        if fm in ("rfa", "favor"):
            w_t = _const(b["w_t"])
            if w_t is None or w_t.ndim != 3 or w_t.shape[0] != num_heads or w_t.shape[1] != head_dim:
                return result.fail("random feature matrix is not a constant [H, d, P]")
            if fm == "favor" and not _close(_scalar(b["sqrt_p_q"]), math.sqrt(w_t.shape[2])):
                return result.fail("favor normaliser is not sqrt(P)")
            self._proj = np.ascontiguousarray(np.transpose(w_t, (0, 2, 1)))
        self._attrs = attrs
        return result

    # -- rewrite -----------------------------------------------------------------------------------
    def rewrite(self, op, query, key, value, **_):  # noqa: ANN001, ANN201
        inputs = [query, key, value]
        if self._proj is not None:
            dtype = query.dtype.numpy() if query.dtype is not None else np.float32
            tensor = ir.tensor(self._proj.astype(dtype), name=f"{query.name}.feature_proj")
            inputs.append(op.initializer(tensor))
        return op.FlurkaAttention(*inputs, _domain=OP_DOMAIN, _version=1, **self._attrs)


def fusion_rules(cast_io: bool) -> pattern.RewriteRuleSet:
    return pattern.RewriteRuleSet([FlurkaAttentionFusion.rule(fm, cast_io) for fm in FEATURE_MAPS])


def fuse_flurka_attention(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Rewrite decomposed FLuRKA attention into FlurkaAttention nodes with their function bodies.

    Returns the new model and the number of nodes fused.
    """
    from ..export.function_bodies import attach_function_bodies

    opset = next((i.version for i in model.opset_import if i.domain in ("", "ai.onnx")), 20)
    before = sum(1 for n in model.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_NAME)
    # Rules with the float32 casts first: otherwise the cast-free rule would match inside them and
    # leave the Cast nodes around a float32 FlurkaAttention.
    fused = rewriter.rewrite(model, pattern_rewrite_rules=fusion_rules(cast_io=True))
    fused = rewriter.rewrite(fused, pattern_rewrite_rules=fusion_rules(cast_io=False))
    nodes = [n for n in fused.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_NAME]
    for i, node in enumerate(nodes):
        if not node.name or node.name.startswith("node_"):
            node.name = f"fused/{OP_NAME}_{i}"
    attach_function_bodies(fused, opset)
    return fused, len(nodes) - before
