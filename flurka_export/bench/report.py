"""Terminal/Markdown table and JSON output of a benchmark run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..utils import atomic_path

COLUMNS = ("kind", "runtime", "N", "p50 ms", "p90 ms", "p99 ms", "seq/s", "tok/s", "peak MB", "vs softmax")


def _row(r: dict[str, Any]) -> list[str]:
    speed = f"{r['speedup']:.2f}x" if r.get("speedup") else "-"
    mem = f"{r['peak_mem_mb']:.0f}" if r.get("peak_mem_mb") is not None else "-"
    return [r["kind"], r["runtime"], str(r["seq_len"]), f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}",
            f"{r['p99_ms']:.2f}", f"{r['seq_per_s']:.2f}", f"{r['tok_per_s']:.0f}", mem, speed]


def _sorted(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Grouped by runtime and N; kinds in the order asked for (softmax, the baseline, usually first).
    order = {k: i for i, k in enumerate(dict.fromkeys(r["kind"] for r in results))}
    return sorted(results, key=lambda r: (r["runtime"], r["seq_len"], r["kind"] != "softmax", order[r["kind"]]))


def format_table(report: dict[str, Any], markdown: bool = False) -> str:
    rows = [_row(r) for r in _sorted(report["results"])]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]
        fmt = lambda cells: "  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        lines = [fmt(COLUMNS), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]
    lines += [f"skipped: {s}" for s in report.get("skipped", [])]
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return Path(path)
