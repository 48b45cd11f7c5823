"""Time the two lowerings of causal kernel attention's core in ONNX Runtime on the CPU: prefill and one
decode step of one layer (linear q/k/v + causal_kernel_attention), exported with dynamo and lowered by
passes.causal_core to com.microsoft.LinearAttention ("ort") and LinearAttention opset 27 ("onnx").

    python benchmarks/causal_linear_attention.py [--prefill 512] [--heads 8] [--head-dim 64] [--feature-map elu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort
import torch

from flurka_export.ops.causal import causal_kernel_attention, causal_state_shape
from flurka_export.passes.causal_core import LINEAR_ATTENTION, lower_causal_core


class Layer(torch.nn.Module):
    def __init__(self, heads: int, head_dim: int, feature_map: str) -> None:
        super().__init__()
        width = heads * head_dim
        self.heads, self.feature_map = heads, feature_map
        self.q, self.k, self.v = (torch.nn.Linear(width, width) for _ in range(3))

    def forward(self, x, past_state):  # noqa: ANN001, ANN201
        return causal_kernel_attention(self.q(x), self.k(x), self.v(x), past_state, num_heads=self.heads,
                                       feature_map=self.feature_map)


def _best_ms(fn, repeat: int) -> float:  # noqa: ANN001
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--feature-map", default="elu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    h, d = args.heads, args.head_dim
    layer = Layer(h, d, args.feature_map).eval()
    shape = (1, *causal_state_shape(h, d, args.feature_map, None, 1))
    x, past = torch.randn(1, 4, h * d), torch.zeros(shape)
    prog = torch.onnx.export(layer, (x, past), dynamo=True, verbose=False, input_names=["x", "past_state"],
                             output_names=["out", "present"],
                             dynamic_shapes=({0: torch.export.Dim("b"), 1: torch.export.Dim("t")}, {0: "b"}))
    xp = np.random.randn(1, args.prefill, h * d).astype(np.float32)
    x1 = np.random.randn(1, 1, h * d).astype(np.float32)
    state = np.zeros(shape, np.float32)
    for variant in LINEAR_ATTENTION:
        model, _ = lower_causal_core(prog.model_proto, variant)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        prefill = _best_ms(lambda: sess.run(None, {"x": xp, "past_state": state}), 20)  # noqa: B023
        step = _best_ms(lambda: sess.run(None, {"x": x1, "past_state": state}), 200)  # noqa: B023
        print(f"{variant:4s}  prefill {args.prefill}: {prefill:8.3f} ms   decode step: {1e3 * step:8.1f} us")


if __name__ == "__main__":
    main()
