"""verify's two halves, after Polygraphy's Comparator.run(runners, data_loader): run every runtime through
the same feed drivers (the family spec's verify cases), then compare each step's outputs per runtime
against the reference with the rules of parity/agreement.py.

An encoder's case is one feed and one step ("forward"); a generating family's case is a prefill and K
steps, each runtime continuing from its own state. Rows carry the case (`shape`) and the `step`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..models.specs import FeedDriver, RunFn, Step
from .agreement import compare_output

Results = dict[str, list[Step]]  # case label -> the steps of one runtime


def run_cases(run: RunFn, cases: list[FeedDriver]) -> Results:
    """Drive one runtime through every case."""
    return {case.label: case.drive(run) for case in cases}


def compare_results(reference: Results, results: dict[str, Results], *, quantized: bool, atol: float,
                    rtol: float, tolerances_given: bool) -> list[dict[str, Any]]:
    """One row per (case, runtime, step, output the reference and the runtime both return)."""
    rows = []
    for label, ref_steps in reference.items():
        for runtime, per_case in results.items():
            for (step, ref), (_, got) in zip(ref_steps, per_case[label], strict=True):
                for name in (k for k in ref if k in got):
                    c = compare_output(name, ref[name], got[name], quantized=quantized, atol=atol, rtol=rtol,
                                       tolerances_given=tolerances_given)
                    rows.append({"shape": label, "step": step, "runtime": runtime, **c.to_dict()})
    return rows


def consistency_rows(cases: list[FeedDriver], results: dict[str, Results], *, quantized: bool, atol: float,
                     rtol: float, tolerances_given: bool) -> list[dict[str, Any]]:
    """One row per check a case makes inside one runtime's results (a generating family: one long prefill
    against prefill + decode steps), with the same tolerances as the comparisons between runtimes."""
    rows = []
    for case in cases:
        for runtime, per_case in results.items():
            for what, expected, got in case.consistency(per_case[case.label]):
                for name in expected:
                    c = compare_output(name, expected[name], got[name], quantized=quantized, atol=atol, rtol=rtol,
                                       tolerances_given=tolerances_given)
                    rows.append({"shape": case.label, "step": what, "runtime": runtime, **c.to_dict()})
    return rows


def worst_per_step(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """runtime -> step -> the largest max abs error of the model's outputs (per-layer rows left out)."""
    worst: dict[str, dict[str, float]] = {}
    for r in rows:
        if not r["output"].startswith("layer"):
            steps = worst.setdefault(r["runtime"], {})
            steps[r["step"]] = max(steps.get(r["step"], 0.0), r["max_abs"])
    return worst


def run_all(reference: RunFn, runners: dict[str, RunFn], cases: list[FeedDriver],
            progress: Callable[[str, str], Any] | None = None) -> tuple[Results, dict[str, Results]]:
    """The reference's results and every other runtime's, case by case."""
    ref = run_cases(reference, cases)
    results: dict[str, Results] = {name: {} for name in runners}
    for case in cases:
        for name, run in runners.items():
            results[name][case.label] = case.drive(run)
            if progress:
                progress(case.label, name)
    return ref, results
