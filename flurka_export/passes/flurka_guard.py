"""Guard for passes run by other tools: every FlurkaAttention node, its overload, its function body and
the com.flurka opset import must come out of a pass exactly as they went in.

ONNX Runtime's offline optimizer and quant_pre_process inline model-local functions, the ONNX version
converter drops them and some simplifiers rename overloads; a pass that wraps one of those tools takes a
snapshot before, and `assert_preserved` refuses the result if anything of ours changed.
"""

from __future__ import annotations

import dataclasses

import onnx

from ..ops.schema import OP_DOMAIN, OP_NAME

# Ops whose output is a quantized or just-dequantized tensor: a FlurkaAttention input must come from none.
QUANT_PRODUCERS = frozenset({"DequantizeLinear", "QuantizeLinear", "QLinearMatMul", "MatMulInteger",
                             "DynamicQuantizeLinear", "QLinearAdd", "QLinearMul"})


class FlurkaNodeLost(ValueError):
    """A pass changed or removed FlurkaAttention nodes, overloads, bodies or the com.flurka opset import."""


@dataclasses.dataclass(frozen=True)
class FlurkaSnapshot:
    nodes: tuple[tuple[str, str, bytes, int], ...]  # (name, overload, attributes serialized, number of inputs)
    bodies: dict[tuple[str, str, str], bytes]  # (domain, name, overload) -> FunctionProto serialized
    opset: int | None  # version of the com.flurka import, None if absent


def is_flurka(node: onnx.NodeProto) -> bool:
    return node.domain == OP_DOMAIN and node.op_type == OP_NAME


def snapshot(model: onnx.ModelProto) -> FlurkaSnapshot:
    nodes = tuple(
        (n.name, n.overload, b"".join(a.SerializeToString() for a in sorted(n.attribute, key=lambda a: a.name)),
         len(n.input))
        for n in model.graph.node if is_flurka(n)
    )
    bodies = {(f.domain, f.name, f.overload): f.SerializeToString() for f in model.functions if f.domain == OP_DOMAIN}
    opset = next((i.version for i in model.opset_import if i.domain == OP_DOMAIN), None)
    return FlurkaSnapshot(nodes, bodies, opset)


def assert_preserved(before: FlurkaSnapshot, model: onnx.ModelProto, step: str) -> None:
    """Raise FlurkaNodeLost naming what `step` changed; a no-op when everything of ours is intact."""
    after = snapshot(model)
    if len(after.nodes) != len(before.nodes):
        raise FlurkaNodeLost(f"{step} left {len(after.nodes)} of {len(before.nodes)} FlurkaAttention nodes "
                             "(inlined or removed); the output was not written")
    for old, new in zip(before.nodes, after.nodes, strict=True):
        if old != new:
            what = "overload" if old[1] != new[1] else "attributes or inputs"
            raise FlurkaNodeLost(f"{step} changed the {what} of FlurkaAttention node {old[0]!r}; "
                                 "the output was not written")
    for key, body in before.bodies.items():
        if after.bodies.get(key) != body:
            raise FlurkaNodeLost(f"{step} {'changed' if key in after.bodies else 'removed'} the function body "
                                 f"{key[0]}::{key[1]}[{key[2]}]; the output was not written")
    if before.opset is not None and after.opset != before.opset:
        raise FlurkaNodeLost(f"{step} dropped the {OP_DOMAIN} opset import; the output was not written")
    _assert_float_inputs(model, step)


def _assert_float_inputs(model: onnx.ModelProto, step: str) -> None:
    producers = {out: n.op_type for n in model.graph.node for out in n.output}
    for node in model.graph.node:
        if not is_flurka(node):
            continue
        for name in node.input:
            if producers.get(name) in QUANT_PRODUCERS:
                raise FlurkaNodeLost(f"{step} quantized input {name!r} of FlurkaAttention node {node.name!r} "
                                     f"(produced by {producers[name]}); its inputs must stay float")
