"""Merge two decoders into one file with an If on a boolean input, as optimum's merged decoders do
(`decoder_model_merged.onnx`): the first step (no past) in the else branch, the step with past in the then branch.

The merged graph takes the union of both inputs plus `use_cache_branch` (bool [1]); each branch reads what it
needs from the outer scope, and both return the same outputs: an output only the first step computes (a
seq2seq decoder's cross states) is passed through from its past input in the with-past branch.

Names: every value that is not a graph input or output is prefixed per branch, so the two traces' names never
meet; initializers with the same bytes are stored once (the weights the two traces share), model-local functions
once per (domain, name, overload). No shape information is needed: ONNX Runtime types each branch itself.
"""

from __future__ import annotations

import hashlib

import onnx
from onnx import TensorProto, helper

USE_CACHE_BRANCH = "use_cache_branch"


def _rename_graph(graph: onnx.GraphProto, prefix: str, keep: set[str]) -> tuple[list[onnx.NodeProto],
                                                                              list[onnx.TensorProto]]:
    """The graph's nodes and initializers with every internal name prefixed (graph inputs kept)."""
    def name(n: str) -> str:
        return n if not n or n in keep else prefix + n

    nodes = []
    for i, node in enumerate(graph.node):
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.name = prefix + (node.name or f"node{i}")
        new.input[:] = [name(n) for n in node.input]
        new.output[:] = [name(n) for n in node.output]
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError(f"node {node.name!r} has a subgraph: merging decoders that already branch is not "
                             "supported")
        nodes.append(new)
    inits = []
    for t in graph.initializer:
        new_t = onnx.TensorProto()
        new_t.CopyFrom(t)
        new_t.name = name(t.name)
        inits.append(new_t)
    return nodes, inits


def _dedupe(inits: list[onnx.TensorProto]) -> tuple[list[onnx.TensorProto], dict[str, str]]:
    """One initializer per distinct (type, dims, bytes); renames from each dropped copy to the kept one."""
    kept: dict[tuple, str] = {}
    out, rename = [], {}
    for t in inits:
        unnamed = onnx.TensorProto()
        unnamed.CopyFrom(t)
        unnamed.name = ""
        key = (t.data_type, tuple(t.dims), hashlib.sha256(unnamed.SerializeToString(deterministic=True)).hexdigest())
        if key in kept:
            rename[t.name] = kept[key]
        else:
            kept[key] = t.name
            out.append(t)
    return out, rename


def _common_dims(a: onnx.ValueInfoProto, b: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    """An input both decoders take: the dims they agree on, unnamed where they differ (a mask that is [batch,
    decoder_sequence] on the first step and [batch, past + decoder_sequence] later)."""
    da, db = a.type.tensor_type.shape.dim, b.type.tensor_type.shape.dim
    if a.type.tensor_type.elem_type != b.type.tensor_type.elem_type or len(da) != len(db):
        raise ValueError(f"input {a.name!r} has a different type or rank in the two decoders")
    dims = [x.dim_param or x.dim_value if x == y else None for x, y in zip(da, db, strict=True)]
    return helper.make_tensor_value_info(a.name, a.type.tensor_type.elem_type, dims)


def _output_info(v: onnx.ValueInfoProto, name: str) -> onnx.ValueInfoProto:
    """The output's element type and rank (dims unnamed: the branches name their symbolic dims differently)."""
    t = v.type.tensor_type
    return helper.make_tensor_value_info(name, t.elem_type, [None] * len(t.shape.dim))


def merge_decoders(first: onnx.ModelProto, with_past: onnx.ModelProto, *,
                   flag: str = USE_CACHE_BRANCH) -> onnx.ModelProto:
    """One model: `with_past` when `flag` is true, `first` otherwise. Outputs: `first`'s; an output `with_past`
    lacks must be named as one of its inputs with the past prefix (present.X <- past_key_values.X), passed through."""
    inputs: dict[str, onnx.ValueInfoProto] = {}
    for g in (first.graph, with_past.graph):
        for v in g.input:
            inputs[v.name] = _common_dims(inputs[v.name], v) if v.name in inputs else v
    if flag in inputs:
        raise ValueError(f"both decoders must not have an input named {flag!r} already")
    keep = set(inputs)
    later_outputs = {o.name for o in with_past.graph.output}
    branches, all_inits = {}, []
    for tag, model in (("first", first), ("with_past", with_past)):
        nodes, inits = _rename_graph(model.graph, f"{tag}/", keep)
        branches[tag] = nodes
        all_inits += inits
    inits, rename = _dedupe(all_inits)
    outputs = list(first.graph.output)
    graphs = {}
    for tag, model in (("first", first), ("with_past", with_past)):
        nodes = branches[tag]
        for node in nodes:
            node.input[:] = [rename.get(n, n) for n in node.input]
        produced = {o.name for o in model.graph.output}
        branch_outputs = []
        for o in outputs:
            inner = f"{tag}/out/{o.name}"
            if o.name in produced:
                source = o.name if o.name in keep else f"{tag}/{o.name}"
            elif tag == "with_past" and o.name not in later_outputs:
                source = _past_of(o.name, keep)
            else:
                raise ValueError(f"the {tag} decoder does not compute {o.name!r}")
            nodes.append(helper.make_node("Identity", [source], [inner], name=f"{tag}/out/{o.name}"))
            branch_outputs.append(_output_info(o, inner))
        graphs[tag] = helper.make_graph(nodes, f"{tag}_branch", [], branch_outputs)
    flag_input = helper.make_tensor_value_info(flag, TensorProto.BOOL, [1])
    cond = helper.make_node("Squeeze", [flag], [f"{flag}/scalar"], name=f"{flag}/squeeze")
    branch = helper.make_node("If", [f"{flag}/scalar"], [o.name for o in outputs], name="decoder_branch",
                              then_branch=graphs["with_past"], else_branch=graphs["first"])
    graph = helper.make_graph([cond, branch], "decoder_merged", [*inputs.values(), flag_input],
                              [_output_info(o, o.name) for o in outputs], initializer=inits)
    functions: dict[tuple[str, str, str], onnx.FunctionProto] = {}
    for f in [*first.functions, *with_past.functions]:
        key = (f.domain, f.name, f.overload)
        if key in functions and functions[key].SerializeToString() != f.SerializeToString():
            raise ValueError(f"the decoders define function {f.domain}::{f.name} differently")
        functions.setdefault(key, f)
    opsets = {o.domain: o.version for o in with_past.opset_import}
    for o in first.opset_import:
        opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    merged = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                               functions=list(functions.values()), ir_version=max(first.ir_version, with_past.ir_version))
    merged.producer_name, merged.producer_version = first.producer_name, first.producer_version
    for p in first.metadata_props:
        merged.metadata_props.add(key=p.key, value=p.value)
    return merged


def _past_of(output: str, inputs: set[str]) -> str:
    """present.X -> past_key_values.X: the with-past branch returns the state it was given."""
    if output.startswith("present."):
        past = "past_key_values." + output[len("present."):]
        if past in inputs:
            return past
    raise ValueError(f"the with-past decoder neither computes {output!r} nor takes it back as a past input")
