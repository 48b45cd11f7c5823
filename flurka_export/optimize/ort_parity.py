"""Check a rewritten model against its input in ONNX Runtime on the same random inputs.

fp32 rewrites (fusions) must agree element-wise (fp32: atol 1e-4, rtol 1e-3); an int8 result is held to
the int8 rules of parity/agreement.py (error relative to the output range, no decisive top-1 flip).
"""

from __future__ import annotations

import dataclasses

import onnx

from ..models.exported import ExportedModel
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


def check_ort_parity(reference: onnx.ModelProto, candidate: onnx.ModelProto, quantized: bool = False,
                     seed: int = 0) -> OrtParity:
    """Run both models on a short and a padded longer batch; compare the first output."""
    from ..parity.agreement import compare_quantized
    from ..runtimes.ort_runner import make_session

    exported = ExportedModel.read(reference)
    config = exported.require_config("cannot verify without it; pass --no-verify to skip the check")
    spec = config.spec
    lo, hi = spec.check_shapes(config, exported.max_seq_len)
    # a short batch and a padded longer one (one batch where the family's length is fixed)
    shapes = [(1, max(lo, min(hi, 16))), (3, max(lo, min(hi, 96)))] if spec.has_sequence_axis(config) else [(2, hi)]
    float_dtype = {"fp16": "float16"}.get(exported.dtype, "float32")
    atol, rtol = DEFAULT_TOLERANCES.get(exported.dtype, DEFAULT_TOLERANCES["fp32"])
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
        feed = spec.make_feed(config, shape, seed=seed + i, float_dtype=float_dtype)
        name = ref_sess.get_outputs()[0].name
        ref = ref_sess.run([name], feed)[0]
        got = new_sess.run([name], feed)[0]
        c = compare_quantized(name, ref, got) if quantized else compare_arrays(name, ref, got, atol, rtol)
        rows.append((f"{shape[0]}x{shape[1]}", c))
    return OrtParity(rows)
