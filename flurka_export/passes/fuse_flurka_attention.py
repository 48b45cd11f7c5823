"""Fusion: decomposed FlurkaAttention subgraphs (as `export --attention-op decomposed` emits them, and as
any exporter tracing the reference op emits them) -> one com.flurka::FlurkaAttention node.

One onnxscript rewrite rule per registered feature map, each with and without the float32 casts that
fp16/bf16 models carry around the core. The shared steps (head split, S, z, merge) are written here;
phi, den and the constant checks come from the feature map's FusePattern (ops/feature_maps), which
refuses a match whose constants differ from the op's (docs/op-spec.md section 5).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
from onnxscript import rewriter
from onnxscript.rewriter import pattern

from ..ops.feature_maps import REGISTRY, FeatureMap
from ..ops.onnx_bodies import attach_function_bodies
from ..ops.schema import OP_DOMAIN, OP_NAME, OP_VERSION


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


class ConstantReader:
    """What a FusePattern.check reads from the matched values (constants, axes, the feature matrix)."""

    const = staticmethod(_const)
    scalar = staticmethod(_scalar)
    axes = staticmethod(_axes)
    close = staticmethod(_close)

    @staticmethod
    def feature_proj(w_t: ir.Value, num_heads: int, head_dim: int) -> np.ndarray | None:
        """feature_proj [H, P, d] from the constant W^T [H, d, P] of the pattern, or None."""
        arr = _const(w_t)
        if arr is None or arr.ndim != 3 or arr.shape[0] != num_heads or arr.shape[1] != head_dim:
            return None
        return np.ascontiguousarray(np.transpose(arr, (0, 2, 1)))


_COMMON_VARS = ("query", "key", "value", "shape_q", "shape_k", "shape_v", "out_shape", "z_axes", "out_type")


class FlurkaAttentionFusion:
    """The rewrite rule of one feature map: pattern, check and replacement."""

    def __init__(self, fmap: FeatureMap, cast_io: bool) -> None:
        self.fmap = fmap
        self.cast_io = cast_io
        self.name = f"FuseFlurkaAttention[{fmap.name}{', casts' if cast_io else ''}]"
        self._attrs: dict[str, Any] = {}
        self._proj: np.ndarray | None = None
        names = ("op", *_COMMON_VARS, *(v for v in fmap.fuse.variables if v not in _COMMON_VARS))
        # onnxscript makes one pattern variable per parameter of the pattern function.
        self._pattern_sig = inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                               for n in names])

    def _heads(self, op, x, shape):  # noqa: ANN001, ANN202
        if self.cast_io:
            x = op.Cast(x, to=onnx.TensorProto.FLOAT)
        return op.Transpose(op.Reshape(x, shape), perm=[0, 2, 1, 3])

    def pattern(self, op, **v):  # noqa: ANN001, ANN201
        fuse = self.fmap.fuse
        w_t = v.get("w_t")
        phq = fuse.phi(op, self._heads(op, v["query"], v["shape_q"]), v, w_t, True)
        phk = fuse.phi(op, self._heads(op, v["key"], v["shape_k"]), v, w_t, False)
        s = op.MatMul(op.Transpose(phk, perm=[0, 1, 3, 2]), self._heads(op, v["value"], v["shape_v"]))
        z = op.ReduceSum(phk, v["z_axes"], keepdims=1)
        num = op.MatMul(phq, s)
        t = fuse.den(op, op.MatMul(phq, op.Transpose(z, perm=[0, 1, 3, 2])), v)
        out = op.Reshape(op.Transpose(op.Div(num, t), perm=[0, 2, 1, 3]), v["out_shape"])
        return op.Cast(out, to=v["out_type"]) if self.cast_io else out

    def check(self, context, **v) -> pattern.MatchResult:  # noqa: ANN001
        result = pattern.MatchResult()
        heads = {_head_shape(v[s]) for s in ("shape_q", "shape_k")}
        if len(heads) != 1 or None in heads:
            return result.fail("cannot read the head count from the head-splitting Reshape")
        (num_heads, head_dim), = heads
        if _axes(v["z_axes"]) not in ((-2,), (2,)):
            return result.fail("z is not a sum over the key axis")
        found = self.fmap.fuse.check(v, ConstantReader, num_heads, head_dim)
        if isinstance(found, str):
            return result.fail(found)
        attrs, self._proj = found
        self._attrs = {"num_heads": num_heads, "feature_map": self.fmap.name, **attrs}
        return result

    def rewrite(self, op, query, key, value, **_):  # noqa: ANN001, ANN201
        inputs = [query, key, value]
        if self._proj is not None:
            dtype = query.dtype.numpy() if query.dtype is not None else np.float32
            tensor = ir.tensor(self._proj.astype(dtype), name=f"{query.name}.feature_proj")
            inputs.append(op.initializer(tensor))
        return op.FlurkaAttention(*inputs, _domain=OP_DOMAIN, _version=OP_VERSION, **self._attrs)

    def rule(self) -> pattern.RewriteRule:
        def target(op, *args):  # noqa: ANN001, ANN202
            return self.pattern(op, **dict(zip(list(self._pattern_sig.parameters)[1:], args, strict=True)))

        target.__signature__ = self._pattern_sig  # type: ignore[attr-defined]
        return pattern.RewriteRule(target, self.rewrite, self.check, name=self.name)


def fusion_rules(cast_io: bool) -> pattern.RewriteRuleSet:
    return pattern.RewriteRuleSet([FlurkaAttentionFusion(fmap, cast_io).rule() for fmap in REGISTRY.values()])


def fuse_flurka_attention(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Rewrite decomposed FLuRKA attention into FlurkaAttention nodes with their function bodies.

    Returns the new model and the number of nodes fused.
    """
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
