"""The shared-buffer softmax baseline of the decode benchmark: a softmax `lm` model rebuilt as an ONNX graph
whose attention is ONNX Runtime's `com.microsoft.GroupQueryAttention`, run the way onnxruntime-genai runs it
(`past_present_share_buffer`): each layer's K and V live in one buffer [B, H, max_len, d] allocated once,
bound through IOBinding as both `past_key_values.{i}.*` and `present.{i}.*`, so a step writes its one new
row in place and copies no cache.

The graph takes the weights of a softmax `FlurkaForCausalLM` (pre-LN blocks, learned positions, GELU): with
the same past K/V it gives the same logits as our export, which is how tests check that it really attends
over the P cached tokens. kv_num_heads = num_heads (plain multi-head attention, as our model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models.lm_io import INPUT_IDS, LOGITS

OPSET = 20


def _w(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().numpy())


class _Graph:
    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], out: str | list[str], domain: str = "", **attrs: Any) -> str:
        outs = [out] if isinstance(out, str) else out
        self.nodes.append(self.helper.make_node(op, inputs, outs, name=outs[0], domain=domain, **attrs))
        return outs[0]

    def linear(self, x: str, lin: Any, name: str) -> str:
        y = self.node("MatMul", [x, self.const(f"{name}.wT", _w(lin.weight).T.copy())], f"{name}.mm")
        return self.node("Add", [y, self.const(f"{name}.b", _w(lin.bias))], name) if lin.bias is not None else y

    def layer_norm(self, x: str, ln: Any, name: str) -> str:
        return self.node("LayerNormalization", [x, self.const(f"{name}.g", _w(ln.weight)),
                                                self.const(f"{name}.b", _w(ln.bias))], name, epsilon=ln.eps, axis=-1)


def gqa_decoder(model: Any) -> Any:
    """onnx.ModelProto of a softmax FlurkaForCausalLM with GroupQueryAttention layers.

    Inputs: input_ids [B, S] int64, position_ids [B, S] int64, seqlens_k [B] int32 (past + new - 1 per row),
    total_sequence_length [] int32, and per layer past_key_values.{i}.key / .value [B, H, max_len, d] (the
    shared buffers). Outputs: logits [B, S, V], present.{i}.key / .value (the same buffers when bound so)."""
    from onnx import TensorProto, helper

    from ..models.lm import FlurkaForCausalLM

    if not isinstance(model, FlurkaForCausalLM) or model.config.attention != "softmax":
        raise ValueError("gqa_decoder rebuilds a softmax FlurkaForCausalLM (task 'lm', attention 'softmax')")
    c = model.config
    if c.hidden_act not in ("gelu", "gelu_tanh"):
        raise ValueError(f"gqa_decoder supports GELU feed-forward layers, not {c.hidden_act!r}")
    h, d = c.num_heads, c.head_dim
    g = _Graph()
    x = g.node("Add", [g.node("Gather", [g.const("wte", _w(model.word_embeddings.weight)), INPUT_IDS], "tok"),
                       g.node("Gather", [g.const("wpe", _w(model.position_embeddings.weight)), "position_ids"],
                              "pos")], "embed")
    inputs = [helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["batch"]),
              helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, [])]
    outputs = [helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", "seq", c.vocab_size])]
    approx = "tanh" if c.hidden_act == "gelu_tanh" else "none"
    for i, layer in enumerate(model.layers):
        att, p = layer.attention, f"l{i}"
        a = g.layer_norm(x, layer.norm1, f"{p}.ln1")
        past = [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        present = [f"present.{i}.key", f"present.{i}.value"]
        for name in past:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", h, "max_len", d]))
        for name in present:
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", h, "max_len", d]))
        ctx = g.node("GroupQueryAttention",
                     [g.linear(a, att.query, f"{p}.q"), g.linear(a, att.key, f"{p}.k"),
                      g.linear(a, att.value, f"{p}.v"), *past, "seqlens_k", "total_sequence_length"],
                     [f"{p}.ctx", *present], domain="com.microsoft", num_heads=h, kv_num_heads=h)
        x = g.node("Add", [x, g.linear(ctx, att.out, f"{p}.o")], f"{p}.res1")
        f = g.layer_norm(x, layer.norm2, f"{p}.ln2")
        f = g.node("Gelu", [g.linear(f, layer.ffn[0], f"{p}.fc1")], f"{p}.gelu", approximate=approx)
        x = g.node("Add", [x, g.linear(f, layer.ffn[2], f"{p}.fc2")], f"{p}.res2")
    x = g.layer_norm(x, model.final_norm, "final_ln")
    head = model.word_embeddings.weight if c.tie_word_embeddings else model.lm_head.weight
    g.node("MatMul", [x, g.const("lm_head.wT", _w(head).T.copy())], LOGITS)
    graph = helper.make_graph(g.nodes, "gqa_decoder", inputs, outputs, g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
                             producer_name="flurka-export bench (GroupQueryAttention baseline)")


class SharedBufferDecoder:
    """Runs a `gqa_decoder` model with IOBinding: past and present of each layer are one OrtValue
    [B, H, max_len, d], allocated once (onnxruntime-genai's past_present_share_buffer)."""

    def __init__(self, model_proto: Any, config: Any, max_len: int, threads: int, batch: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model_proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.config, self.max_len, self.batch = config, max_len, batch
        shape = (batch, config.num_heads, max_len, config.head_dim)
        self.buffers = {f"{i}.{n}": ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, np.float32))
                        for i in range(config.num_layers) for n in ("key", "value")}
        self.binding = self.session.io_binding()
        self.binding.bind_output(LOGITS, "cpu")  # get_outputs() comes in binding order: logits first
        for name, value in self.buffers.items():
            self.binding.bind_ortvalue_input(f"past_key_values.{name}", value)
            self.binding.bind_ortvalue_output(f"present.{name}", value)

    def fill(self, past_len: int, seed: int = 0) -> None:
        """Random K/V in the first `past_len` rows of every buffer (a context of `past_len` tokens)."""
        rng = np.random.default_rng(seed)
        for value in self.buffers.values():
            buf = value.numpy()  # a view of the OrtValue's memory on the CPU
            buf[:, :, :past_len] = rng.standard_normal(buf[:, :, :past_len].shape, dtype=np.float32)

    def bind_step(self, input_ids: np.ndarray, past_len: int) -> None:
        """Bind the inputs of one call: `input_ids` [B, S] at positions past_len .. past_len + S - 1."""
        b, s = input_ids.shape
        if past_len + s > self.max_len:
            raise ValueError(f"past {past_len} + {s} new tokens exceed the buffers' {self.max_len} rows")
        self._feeds = {INPUT_IDS: np.ascontiguousarray(input_ids, np.int64),
                       "position_ids": np.broadcast_to(np.arange(past_len, past_len + s), (b, s)).astype(np.int64),
                       "seqlens_k": np.full((b,), past_len + s - 1, np.int32),
                       "total_sequence_length": np.array(past_len + s, np.int32)}
        for name, value in self._feeds.items():
            self.binding.bind_cpu_input(name, value)

    def run(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def logits(self) -> np.ndarray:
        return self.binding.get_outputs()[0].numpy()

    def shares_buffers(self) -> bool:
        """True when every present output is the very buffer bound as its past (no copy per step)."""
        presents = self.binding.get_outputs()[1:]  # bound in self.buffers' order after logits
        return all(out.data_ptr() == v.data_ptr() for out, v in zip(presents, self.buffers.values(), strict=True))
