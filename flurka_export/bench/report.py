"""Terminal/Markdown table and JSON output of a benchmark run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..utils import atomic_path
from .timing import SPREAD_LIMIT

COLUMNS = ("kind", "runtime", "N", "p50 ms", "p90 ms", "p99 ms", "p90/p50", "seq/s", "tok/s", "peak MB", "vs softmax")
MARK = "*"
LEGEND = (f"{MARK} p90/p50 > {SPREAD_LIMIT}: this configuration's timings spread widely (a busy machine or too "
          "few --iters); do not trust its ratios")


def _mem(mb: float | None) -> str:
    if mb is None:
        return "-"
    return f"{mb:.0f}" if mb >= 10 else f"{mb:.1f}"


def _row(r: dict[str, Any], baseline_unstable: bool) -> list[str]:
    unstable = bool(r.get("unstable"))
    spread = r.get("spread") or r["p90_ms"] / r["p50_ms"]
    speed = f"{r['speedup']:.2f}x" if r.get("speedup") else "-"
    if speed != "-" and (unstable or baseline_unstable):
        speed += MARK
    return [r["kind"], r["runtime"], str(r["seq_len"]), f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}",
            f"{r['p99_ms']:.2f}", f"{spread:.2f}" + (MARK if unstable else ""), f"{r['seq_per_s']:.2f}",
            f"{r['tok_per_s']:.0f}", _mem(r.get("peak_mem_mb")), speed]


def _sorted(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Grouped by runtime and N; kinds in the order asked for (softmax, the baseline, usually first).
    order = {k: i for i, k in enumerate(dict.fromkeys(r["kind"] for r in results))}
    return sorted(results, key=lambda r: (r["runtime"], r["seq_len"], r["kind"] != "softmax", order[r["kind"]]))


def text_table(headers: list[str] | tuple[str, ...], rows: list[list[str]], markdown: bool = False,
               left: int = 2) -> list[str]:
    """Rows of cells as aligned text (the first `left` columns left-aligned) or as a Markdown table."""
    if markdown:
        return ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|",
                *("| " + " | ".join(r) + " |" for r in rows)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()
    return [fmt(list(headers)), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]


def caption(report: dict[str, Any]) -> list[str]:
    """How the numbers were taken: threads, warm-up, iterations; a warning when the machine was busy."""
    s, env = report.get("settings") or {}, report.get("environment") or {}
    if not s:
        return []
    lines = [f"threads {s['threads']} per runtime (torch.set_num_threads, ORT intra_op_num_threads); "
             f"{s['warmup']} warm-up + {s['iters']} timed calls per row; batch {s['batch']}"]
    load, cores = env.get("load_average_start"), env.get("physical_cores")
    if load is not None and cores and load > cores:
        lines.append(f"warning: the machine was busy (load average {load:.1f} on {cores} cores at the start): "
                     "timings are slower and noisier than on an idle machine")
    return lines


def format_table(report: dict[str, Any], markdown: bool = False) -> str:
    results = _sorted(report["results"])
    unstable_base = {(r["runtime"], r["seq_len"]) for r in results if r["kind"] == "softmax" and r.get("unstable")}
    rows = [_row(r, (r["runtime"], r["seq_len"]) in unstable_base) for r in results]
    lines = [*caption(report), *text_table(COLUMNS, rows, markdown)]
    if any(r.get("unstable") for r in results):
        lines.append(LEGEND)
    lines += [f"{rt}: skipped ({why})" for rt, why in (report.get("skipped") or {}).items()]
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return Path(path)
