"""Check a rewritten model against its input in ONNX Runtime on the same random inputs.

fp32 rewrites (fusions) must agree element-wise (fp32: atol 1e-4, rtol 1e-3); an int8 result is held to
the int8 rules of parity/agreement.py (error relative to the output range, no decisive top-1 flip).
"""

from __future__ import annotations

import dataclasses
import json

import onnx

from ..onnx_io import META_CONFIG, META_DTYPE, META_MAX_SEQ_LEN
from ..parity.compare import DEFAULT_TOLERANCES, Comparison, compare_arrays


@dataclasses.dataclass
class OrtParity:
    rows: list[tuple[str, Comparison]]  # (shape "BxN", comparison of the first output)

    @property
    def passed(self) -> bool:
        return all(c.passed for _, c in self.rows)

    @property
    def max_abs(self) -> float:
        return max((c.max_abs for _, c in self.rows), default=0.0)

    def summary(self) -> str:
        # The row closest to its bound (int8 bounds scale with each batch's output range).
        tol = max((c for _, c in self.rows), key=lambda c: c.max_abs / max(c.atol, 1e-30), default=None)
        rule = f"worst row {tol.max_abs:.2e} against atol {tol.atol:.2g}, rtol {tol.rtol:.2g}" if tol else ""
        extra = ""
        agree = [c for _, c in self.rows if getattr(c, "top1_agreement", None) is not None]
        if agree:
            same = sum(round(c.top1_agreement * c.rows) for c in agree)
            extra = f", top-1 agreement {same}/{sum(c.rows for c in agree)}"
        shapes = ", ".join(s for s, _ in self.rows)
        return (f"ORT parity against the input model on {shapes}: max abs {self.max_abs:.2e} ({rule}{extra}) -> "
                f"{'PASS' if self.passed else 'FAIL'}")


def _config(model: onnx.ModelProto):  # noqa: ANN202
    from ..models import FlurkaConfig

    props = {p.key: p.value for p in model.metadata_props}
    if META_CONFIG not in props:
        raise ValueError("cannot verify: the model has no flurka.config metadata (not exported by flurka-export); "
                         "pass --no-verify to skip the check")
    return FlurkaConfig.from_dict(json.loads(props[META_CONFIG])), props


def check_ort_parity(reference: onnx.ModelProto, candidate: onnx.ModelProto, quantized: bool = False,
                     seed: int = 0) -> OrtParity:
    """Run both models on a short and a padded longer batch; compare the first output."""
    from ..parity.agreement import compare_quantized
    from ..parity.inputs import make_inputs
    from ..runtimes.ort_runner import make_session

    config, props = _config(reference)
    lo, hi = config.seq_len_range
    hi = min(hi, int(props.get(META_MAX_SEQ_LEN, hi)))
    shapes = [(2, hi)] if config.task == "image" else [(1, max(lo, min(hi, 16))), (3, max(lo, min(hi, 96)))]
    float_dtype = {"fp16": "float16"}.get(props.get(META_DTYPE, "fp32"), "float32")
    atol, rtol = DEFAULT_TOLERANCES.get(props.get(META_DTYPE, "fp32"), DEFAULT_TOLERANCES["fp32"])
    sessions = []
    for which, model in (("input", reference), ("optimized", candidate)):
        try:
            sessions.append(make_session(model.SerializeToString(), ["CPUExecutionProvider"]))
        except Exception as e:  # ORT's own error types; e.g. bf16 models have no CPU kernels
            raise ValueError(f"cannot verify: ONNX Runtime (CPU) cannot load the {which} model "
                             f"({str(e).splitlines()[0][:200]}); pass --no-verify to skip the check") from None
    ref_sess, new_sess = sessions
    rows = []
    for i, shape in enumerate(shapes):
        feed = make_inputs(config, shape, seed=seed + i, float_dtype=float_dtype)
        name = ref_sess.get_outputs()[0].name
        ref = ref_sess.run([name], feed)[0]
        got = new_sess.run([name], feed)[0]
        c = compare_quantized(name, ref, got) if quantized else compare_arrays(name, ref, got, atol, rtol)
        rows.append((f"{shape[0]}x{shape[1]}", c))
    return OrtParity(rows)
