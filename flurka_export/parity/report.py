"""The verify report: a terminal table that states its criterion, one verdict line, JSON."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from ..utils import atomic_path
from .agreement import agreement_note


@dataclasses.dataclass
class VerifyReport:
    passed: bool
    rows: list[dict[str, Any]]
    skipped: dict[str, str]  # runtime -> why it did not run
    first_divergence: dict[str, str]
    softmax_error: list[dict[str, Any]] | None
    meta: dict[str, Any]
    summary: str = ""  # what was compared, e.g. "torch vs ort on 3 shapes; trt not installed"
    failures: list[str] = dataclasses.field(default_factory=list)  # why the verdict is FAIL

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def compared(self) -> list[str]:
        return sorted({r["runtime"] for r in self.rows})


def criterion(atol: float, rtol: float, quantized: bool = False) -> str:
    if quantized:
        return ("int8 model: pass if every output stays within 10% of its largest magnitude (parity/agreement.py); "
                "top-1 agreement is reported; --atol/--rtol switch back to the element-wise rule")
    return (f"pass if |runtime - torch| <= atol + rtol*|torch| for every element (atol={atol:g}, rtol={rtol:g}); "
            "'worst' is the element closest to (or furthest past) that bound")


def format_table(report: VerifyReport) -> str:
    m = report.meta
    out = [f"verify {m['onnx']} against {m['checkpoint']} ({m['attention']}, {m['task']}, {m['dtype']}; "
           f"seed {m['seed']}; device {m['device']})",
           criterion(m["atol"], m["rtol"], m.get("quantized", False) and not m.get("tolerances_given", False))]
    header = (f"{'pair':<16} {'shape':<10} {'output':<20} {'max abs':>10} {'max rel':>10} "
              f"{'worst |a-b|':>12} {'allowed':>10}  result")
    out += [header, "-" * len(header)]
    for r in report.rows:
        case = r["shape"] if r.get("step", "forward") == "forward" else f"{r['shape']} {r['step']}"
        out.append(f"{'torch vs ' + r['runtime']:<16} {case:<10} {r['output']:<20} {r['max_abs']:>10.3g} "
                   f"{r['max_rel']:>10.3g} {r['worst_abs']:>12.3g} {r['worst_allowed']:>10.3g}  "
                   f"{'pass' if r['passed'] else 'FAIL'}{agreement_note(r)}")
    if not report.rows:
        out.append("(no runtime was compared against torch)")
    for name, why in report.skipped.items():
        tag = "FAIL, it was asked for" if name in m["required"] else "not counted"
        out.append(f"{name}: did not run ({tag}): {why}")
    for name, steps in m.get("worst_per_step", {}).items():
        if list(steps) != ["forward"]:  # a generating family: prefill and decode steps
            out.append(f"torch vs {name}, worst max abs per step: "
                       + ", ".join(f"{step} {err:.2e}" for step, err in steps.items()))
    for name, where in report.first_divergence.items():
        out.append(f"{name}: first diverging tensor: {where}")
    if report.softmax_error is not None:
        out.append("approximation error against exact softmax attention (same weights), per layer:")
        out.extend(f"  layer {e['layer']}: relative error {e['relative_error']:.4f}" for e in report.softmax_error)
    out.append(verdict_line(report))
    return "\n".join(out)


def verdict_line(report: VerifyReport) -> str:
    if report.passed:
        return f"RESULT: PASS ({report.summary})"
    return f"RESULT: FAIL ({'; '.join(report.failures)})" + (f" ({report.summary})" if report.summary else "")


def parity_line(report: VerifyReport) -> str:
    """One line for the demo: the worst error of the model's output per runtime, then the verdict."""
    parts = []
    for rt in report.compared:  # per-layer rows are named layer<i>.*; the rest is the model output
        logits = [r for r in report.rows if r["runtime"] == rt and not r["output"].startswith("layer")]
        worst = max(r["max_abs"] for r in logits)
        parts.append(f"torch vs {rt}: max abs {worst:.2e} over {len(logits)} shapes")
    verdict = "PASS" if report.passed else "FAIL: " + "; ".join(report.failures)
    return f"parity: {'; '.join(parts)} -> {verdict}" if parts else f"parity: {verdict}"


def write_report(report: VerifyReport, path: str | os.PathLike, overwrite: bool = True) -> None:
    with atomic_path(Path(path), overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
