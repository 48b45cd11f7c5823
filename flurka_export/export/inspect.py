"""What is inside an ONNX file: opsets, I/O with dynamic axes, FlurkaAttention nodes, bodies, dtype, size."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

import onnx

from ..models.exported import ExportedModel
from ..onnx_io import META_CONFIG, META_MAX_SEQ_LEN
from ..ops.schema import OP_DOMAIN, OP_NAME


def _dims(vi: onnx.ValueInfoProto) -> list[int | str]:
    shape = vi.type.tensor_type.shape
    return [d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") else "?") for d in shape.dim]


def _dtype(vi: onnx.ValueInfoProto) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name


def _attr(a: onnx.AttributeProto) -> Any:
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, float):
        return float(f"{v:.7g}")  # float32 attribute: print 1e-06, not 9.99999997e-07
    return v.decode() if isinstance(v, bytes) else v


def inspect_model(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    exported = ExportedModel.read(path)  # read once: I/O, metadata (weights not loaded)
    model = exported.proto
    size = path.stat().st_size
    data_files = {
        e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"
    }
    size += sum((path.parent / f).stat().st_size for f in data_files if (path.parent / f).is_file())
    float_types = collections.Counter(
        onnx.helper.tensor_dtype_to_np_dtype(t.data_type).name
        for t in model.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16,
                                                            onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)
    )
    bodies = {(f.domain, f.name, f.overload) for f in model.functions}
    nodes = []
    for n in model.graph.node:
        if n.domain == OP_DOMAIN and n.op_type == OP_NAME:
            nodes.append({
                "name": n.name,
                "overload": n.overload,
                "inputs": list(n.input),
                "attributes": {a.name: _attr(a) for a in n.attribute},
                "has_body": (n.domain, n.op_type, n.overload) in bodies,
            })
    props = exported.metadata
    return {
        "path": str(path),
        "size_bytes": size,
        "external_data": sorted(data_files),
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opsets": {(i.domain or "ai.onnx"): i.version for i in model.opset_import},
        "inputs": [{"name": i.name, "dtype": _dtype(i), "shape": _dims(i)} for i in model.graph.input],
        "outputs": [{"name": o.name, "dtype": _dtype(o), "shape": _dims(o)} for o in model.graph.output],
        "dynamic_axes": {
            vi.name: {i: d for i, d in enumerate(_dims(vi)) if isinstance(d, str)}
            for vi in list(model.graph.input) + list(model.graph.output)
        },
        "weight_dtype": float_types.most_common(1)[0][0] if float_types else None,
        "num_nodes": len(model.graph.node),
        "op_types": dict(collections.Counter(
            f"{n.domain}::{n.op_type}" if n.domain else n.op_type for n in model.graph.node).most_common()),
        "flurka_nodes": nodes,
        "functions": [{"domain": f.domain, "name": f.name, "overload": f.overload, "nodes": len(f.node)}
                      for f in model.functions],
        "metadata": {k: v for k, v in props.items() if k != META_CONFIG},
        "flurka_config": exported.config_dict,
        "family": exported.spec.family if exported.spec is not None else None,
        "max_seq_len": exported.max_seq_len if META_MAX_SEQ_LEN in props else None,
        "max_seq_len_enforced": any(n.name.startswith("sequence length of ") for n in model.graph.node),
        "state": _state_summary(model),
    }


STATE_PREFIX = "past_key_values."
DTYPE_BYTES = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.BFLOAT16: 2}


def state_tensors(model: onnx.ModelProto) -> list[dict[str, Any]]:
    """Each past input a generating model carries between calls, with its bytes per sequence: constant for a
    recurrent state (`fixed`), per token of context for a KV cache (a dim other than batch that is not fixed)."""
    out = []
    for vi in model.graph.input:
        if vi.name.startswith(STATE_PREFIX):
            dims = _dims(vi)[1:]  # the batch dim is per sequence by definition
            size = DTYPE_BYTES.get(vi.type.tensor_type.elem_type, 4)
            for d in dims:
                size *= d if isinstance(d, int) else 1
            out.append({"name": vi.name, "dtype": _dtype(vi), "shape": _dims(vi), "bytes": size,
                        "fixed": all(isinstance(d, int) for d in dims)})
    return out


def _state_summary(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The past inputs in all (`state_tensors`), and the LinearAttention nodes that update them."""
    tensors = state_tensors(model)
    if not tensors:
        return None
    cores = collections.Counter(f"{n.domain or 'ai.onnx'}::{n.op_type}" for n in model.graph.node
                                if n.op_type == "LinearAttention")
    return {"inputs": len(tensors), "bytes_per_sequence": sum(t["bytes"] for t in tensors if t["fixed"]),
            "bytes_per_context_token": sum(t["bytes"] for t in tensors if not t["fixed"]),
            "linear_attention_nodes": dict(cores), "tensors": tensors}


def format_report(info: dict[str, Any]) -> str:
    lines = [
        f"{info['path']}  ({info['size_bytes'] / 1e6:.2f} MB{', external data: ' + ', '.join(info['external_data']) if info['external_data'] else ''})",
        f"  IR {info['ir_version']}, producer {info['producer'] or '?'}, weights {info['weight_dtype']}",
        "  opsets: " + ", ".join(f"{d} {v}" for d, v in info["opsets"].items()),
        "  inputs:",
        *(f"    {i['name']}: {i['dtype']} {i['shape']}" for i in info["inputs"]),
        "  outputs:",
        *(f"    {o['name']}: {o['dtype']} {o['shape']}" for o in info["outputs"]),
        f"  nodes: {info['num_nodes']} ("
        + ", ".join(f"{k} x{v}" for k, v in list(info["op_types"].items())[:8])
        + (", ..." if len(info["op_types"]) > 8 else "") + ")",
        f"  FlurkaAttention nodes: {len(info['flurka_nodes'])}",
    ]
    for n in info["flurka_nodes"]:
        attrs = ", ".join(f"{k}={v}" for k, v in n["attributes"].items())
        body = "body present" if n["has_body"] else "NO BODY (needs the TensorRT plugin)"
        lines.append(f"    {n['name']}: {attrs}; {len(n['inputs'])} inputs; {body}")
    if info["functions"]:
        lines.append("  function bodies: " + ", ".join(
            f"{f['domain']}::{f['name']}[{f['overload']}] ({f['nodes']} nodes)" for f in info["functions"]))
    if info["flurka_config"]:
        c = info["flurka_config"]
        lines.append(f"  model: family={info['family']} task={c['task']} attention={c['attention']} layers={c['num_layers']} "
                     f"hidden={c['hidden_size']} heads={c['num_heads']} k={c['low_rank']} N_max={c['max_seq_len']}")
    if info["max_seq_len"] is not None:
        how = "enforced in the graph" if info["max_seq_len_enforced"] else "NOT enforced in the graph"
        lines.append(f"  max_seq_len: {info['max_seq_len']} (longest sequence this file accepts; {how})")
    if info.get("state"):
        lines.append(_state_line(info["state"]))
    return "\n".join(lines)


def _state_line(st: dict[str, Any]) -> str:
    parts = []
    if st["bytes_per_sequence"]:
        parts.append(f"{st['bytes_per_sequence'] / 1024:.1f} KiB per sequence, whatever the context length")
    if st["bytes_per_context_token"]:
        parts.append(f"{st['bytes_per_context_token'] / 1024:.1f} KiB per sequence per token of context (a KV cache)")
    cores = "".join(f"; {k} x{v}" for k, v in st["linear_attention_nodes"].items())
    return f"  state between calls: {st['inputs']} past_key_values.* inputs, {' + '.join(parts)}{cores}"
