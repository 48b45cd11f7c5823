"""PNG plot of a benchmark run: p50 latency against sequence length, log-log, one line per kind and runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..utils import atomic_path


def load_pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or ImportError naming the pip command."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("the benchmark plot needs matplotlib: pip install matplotlib "
                          "(or pip install -e '.[dev]')") from None
    matplotlib.use("Agg")  # files only; no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: dict[str, Any], path: str | os.PathLike, title: str | None = None) -> Path:
    plt = load_pyplot()
    results = report["results"]
    kinds = list(dict.fromkeys(r["kind"] for r in results))
    runtimes = list(dict.fromkeys(r["runtime"] for r in results))
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    colors = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=90)
    for ki, kind in enumerate(kinds):
        for ri, rt in enumerate(runtimes):
            pts = sorted((r["seq_len"], r["p50_ms"]) for r in results if r["kind"] == kind and r["runtime"] == rt)
            if pts:
                ax.plot(*zip(*pts, strict=True), linestyle=styles[ri % len(styles)], marker=markers[ki % len(markers)],
                        color=colors(ki % 10), label=f"{kind} ({rt})", markersize=4)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    lens = sorted({r["seq_len"] for r in results})
    ax.set_xticks(lens, [str(n) for n in lens])  # the measured N, not powers of two
    ax.minorticks_off()
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("p50 latency per batch (ms)")
    s = report.get("settings", {})
    ax.set_title(title or f"{s.get('layers')} layers, D={s.get('hidden')}, H={s.get('heads')}, "
                          f"k={s.get('low_rank')}, batch {s.get('batch')}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
