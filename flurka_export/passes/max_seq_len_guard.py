"""Make an exported text model refuse sequences longer than its max_seq_len, by name.

ONNX has no assert op. Without this pass a too-long input fails deep inside the graph (ONNX Runtime:
"Attempting to broadcast an axis by a dimension other than 1. 1024 by 1025" on `node_add_7`), or, when
the export limit is below the model's N_max, runs silently. The pass adds, right after each sequence
input (the family spec names them: inputs whose dim 1 is the sequence), `x + zeros[1, max_seq_len][:, :N]`: a no-op for N <= max_seq_len and a broadcast failure otherwise.
The failing node is named after the limit, so every runtime's error message contains
`max_seq_len=<limit>`.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir


def guard_node_name(input_name: str, max_seq_len: int) -> str:
    return f"sequence length of {input_name} exceeds max_seq_len={max_seq_len}"


def add_max_seq_len_guard(model: onnx.ModelProto, max_seq_len: int,
                          sequence_inputs: tuple[str, ...] | list[str]) -> tuple[onnx.ModelProto, int]:
    """Guard each of `sequence_inputs` (graph inputs [batch, sequence, ...]); returns the guarded model and the
    number of inputs guarded (0 for families without a sequence input)."""
    graph_model = ir.from_proto(model)
    graph = graph_model.graph
    guarded = 0
    for value in list(graph.inputs):
        if value.name not in sequence_inputs:
            continue
        uses = list(value.uses())
        if not uses:
            continue
        checked = _guard(graph, value, max_seq_len)
        for user, index in uses:
            user.replace_input_with(index, checked)
        guarded += 1
    return ir.to_proto(graph_model), guarded


def _guard(graph: ir.Graph, value: ir.Value, max_seq_len: int) -> ir.Value:
    name = value.name
    dtype = value.dtype.numpy() if value.dtype is not None else np.int64
    zeros = ir.Value(name=f"{name}.max_seq_len_zeros", const_value=ir.tensor(np.zeros((1, max_seq_len), dtype)))
    const = lambda tag, arr: ir.Value(name=f"{name}.max_seq_len_{tag}", const_value=ir.tensor(np.asarray(arr, np.int64)))
    starts, axes, one, two = const("start", [0]), const("axis", [1]), const("one", [1]), const("two", [2])
    for v in (zeros, starts, axes, one, two):
        graph.register_initializer(v)
    shape = ir.node("Shape", [value], name=f"{name}/max_seq_len_shape")
    length = ir.node("Slice", [shape.outputs[0], one, two], name=f"{name}/max_seq_len_length")
    window = ir.node("Slice", [zeros, starts, length.outputs[0], axes], name=f"{name}/max_seq_len_window")
    check = ir.node("Add", [value, window.outputs[0]], name=guard_node_name(name, max_seq_len))
    check.outputs[0].name = f"{name}.checked"
    check.outputs[0].dtype = value.dtype
    check.outputs[0].shape = value.shape
    graph.insert_before(graph[0], [shape, length, window, check])
    return check.outputs[0]
