"""int8 comparison rules: bound relative to the output range; top-1 agreement reported, required on request."""

import numpy as np

from flurka_export.parity.agreement import agreement_note, compare_output, compare_quantized


def test_small_error_passes_with_full_agreement():
    ref = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]])
    c = compare_quantized("logits", ref, ref + 0.05)
    assert c.passed and c.top1_agreement == 1.0 and c.rows == 2
    assert abs(c.atol - 0.3) < 1e-12  # 10% of max |ref|
    assert agreement_note(c.to_dict()) == " top-1 2/2"


def test_large_error_fails():
    ref = np.array([[2.0, -1.0, 0.5]])
    assert not compare_quantized("logits", ref, ref + np.array([[0.0, 0.0, 0.5]])).passed


def test_agreement_counts_with_enough_rows():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 50, 10))  # MLM-like: 200 rows
    c = compare_quantized("logits", ref, ref + 1e-3)
    assert c.passed and c.top1_agreement == 1.0 and c.rows == 200
    flipped = ref.copy()
    top2 = np.argsort(ref, axis=-1)[..., -2:]
    rows = np.arange(200).reshape(4, 50) < 6  # swap the top two of 6 rows: 97% agreement
    for b, n in zip(*np.nonzero(rows), strict=True):
        i, j = top2[b, n]
        flipped[b, n, i], flipped[b, n, j] = ref[b, n, j], ref[b, n, i]
    c = compare_quantized("logits", ref, flipped, rel_error=10.0)  # bound loose: only agreement can fail
    assert c.top1_agreement == 0.97 and c.passed  # reported, not required by default
    assert not compare_quantized("logits", ref, flipped, rel_error=10.0, require_agreement=True).passed
    few = compare_quantized("logits", ref[0, :6], flipped[0, :6], rel_error=10.0, require_agreement=True)
    assert few.top1_agreement == 0.0 and few.passed  # 6 rows: too few to judge by agreement


def test_hook_dispatch():
    ref = np.array([[1.0, 0.0]])
    got = ref + 0.01
    assert not compare_output("logits", ref, got, quantized=False, atol=1e-4, rtol=1e-3).passed
    assert compare_output("logits", ref, got, quantized=True, atol=1e-4, rtol=1e-3).passed
    assert not compare_output("logits", ref, got, quantized=True, atol=1e-4, rtol=1e-3, tolerances_given=True).passed
