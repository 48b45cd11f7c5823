"""Tables, goal checks and the plot of a decode benchmark run (bench/decode_run.py's report)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..utils import atomic_path
from .report import LEGEND, MARK, text_table

LABELS = {"softmax": "softmax (ours, concat)", "softmax-gqa": "softmax GQA shared buffer", "gpt2-hf": "GPT-2 HF"}
# issue 21's goals: kernel per-token time flat; speedups at the longest context; state bytes far below the cache.
FLAT_LIMIT = 1.3
MIN_SPEEDUP = {"softmax-gqa": 5.0, "softmax": 10.0}
MIN_BYTES_RATIO = 100.0


SHORT = {"softmax": "softmax", "softmax-gqa": "gqa", "gpt2-hf": "gpt2-hf"}  # table headers


def label(model: str) -> str:
    return LABELS.get(model, f"{model} (ours)" if model.startswith("kernel-") else model)


def kernel_model(report: dict[str, Any]) -> str | None:
    """The kernel kind the ratios are taken against: the first kernel-* kind timed."""
    return next((r["model"] for r in report["decode"] if r["model"].startswith("kernel-")), None)


def _by(report: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["model"], r["context"]): r for r in report["decode"]}


def mib(n: int) -> str:
    return f"{n / 2**20:.3f}" if n < 2**20 else f"{n / 2**20:.1f}"


def decode_table(report: dict[str, Any], markdown: bool = False) -> list[str]:
    """One row per context: each model's per-token p50, the kernel kind's speedup over each softmax model, and
    the past bytes of the kernel state and of the KV cache."""
    rows_by = _by(report)
    models = list(dict.fromkeys(r["model"] for r in report["decode"]))
    kern = kernel_model(report)
    others = [m for m in models if m != kern]
    headers = ["P", *(f"{SHORT.get(m, m)} ms" for m in models), *(f"vs {SHORT.get(m, m)}" for m in others if kern)]
    if kern:
        headers += ["state MiB", "KV cache MiB", "KV / state"]
    rows, marked = [], False
    for p in sorted({r["context"] for r in report["decode"]}):
        cells = [str(p)]
        for m in models:
            r = rows_by.get((m, p))
            marked |= bool(r and r["unstable"])
            cells.append("-" if r is None else f"{r['p50_ms']:.3f}" + (MARK if r["unstable"] else ""))
        k = rows_by.get((kern, p)) if kern else None
        for m in others if kern else []:
            r = rows_by.get((m, p))
            cells.append(f"{r['p50_ms'] / k['p50_ms']:.1f}x" if r and k else "-")
        if kern:
            kv = next((rows_by[(m, p)]["past_bytes"] for m in others if (m, p) in rows_by), None)
            cells += [mib(k["past_bytes"]) if k else "-", "-" if kv is None else mib(kv),
                      f"{kv / k['past_bytes']:.0f}x" if k and kv else "-"]
        rows.append(cells)
    out = text_table(headers, rows, markdown, left=1)
    return [*out, LEGEND] if marked else out


def prefill_table(report: dict[str, Any], markdown: bool = False) -> list[str]:
    rows = [[label(r["model"]), r["runtime"], str(r["tokens"]), f"{r['p50_ms']:.2f}" + (MARK if r["unstable"] else ""),
             f"{r['tok_per_s']:.0f}"] for r in report["prefill"]]
    return text_table(["model", "runtime", "tokens", "p50 ms", "tokens/s"], rows, markdown, left=2)


def goals(report: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(goal, measured, met) for each of issue 21's goals this run can judge (a kernel kind and the baselines)."""
    kern = kernel_model(report)
    if kern is None:
        return []
    rows_by = _by(report)
    contexts = sorted(p for (m, p) in rows_by if m == kern)
    lo, hi = contexts[0], contexts[-1]
    k_lo, k_hi = rows_by[(kern, lo)], rows_by[(kern, hi)]
    out = []
    flat = k_hi["p50_ms"] / k_lo["p50_ms"]
    out.append((f"{kern} per-token time flat: P={hi} / P={lo} <= {FLAT_LIMIT}", f"{flat:.2f}", flat <= FLAT_LIMIT))
    for base, need in MIN_SPEEDUP.items():
        if (base, hi) in rows_by:
            x = rows_by[(base, hi)]["p50_ms"] / k_hi["p50_ms"]
            out.append((f"P={hi}: >= {need:g}x faster per token than {label(base)}", f"{x:.1f}x", x >= need))
    sizes = {rows_by[(kern, p)]["past_bytes"] for p in contexts}
    out.append(("state bytes constant across contexts", f"{sorted(sizes)} B", len(sizes) == 1))
    kv = next((rows_by[(m, hi)]["past_bytes"] for m in ("softmax", "softmax-gqa", "gpt2-hf") if (m, hi) in rows_by),
              None)
    if kv:
        ratio = kv / k_hi["past_bytes"]
        out.append((f"P={hi}: state >= {MIN_BYTES_RATIO:g}x smaller than the KV cache", f"{ratio:.0f}x",
                    ratio >= MIN_BYTES_RATIO))
    return out


def goal_lines(report: dict[str, Any]) -> list[str]:
    return [f"{'met   ' if met else 'MISSED'} {goal}: {value}" for goal, value, met in goals(report)]


def caption(report: dict[str, Any]) -> list[str]:
    s, env = report["settings"], report["environment"]
    lines = [f"lm: {s['layers']} layers, D={s['hidden']}, {s['heads']} heads, vocabulary {s['vocab']}, "
             f"positions {max(max(s['contexts']) + 256, s['prefill_len'])}, batch 1, float32; "
             f"onnxruntime {env['onnxruntime']}, torch {env['torch']}, {s['threads']} threads per runtime; "
             f"{s['rounds']} interleaved rounds, {s['warmup']} warm-up + about {s['iters']} timed calls per cell",
             f"machine: {env['cpu']}, {env['physical_cores']} physical cores, load average "
             f"{env['load_average_start']} at the start, {env['load_average_end']} at the end"]
    check = report.get("gqa_check")
    if check:
        lines.append(f"GroupQueryAttention check at P={check['past_len']}: "
                     f"{'passed' if check['passed'] else 'FAILED'} (max |logits - PyTorch| "
                     f"{check['max_abs_diff']:.2g}, past and present one buffer: {check['shares_buffers']})")
    return lines


def format_report(report: dict[str, Any], markdown: bool = False) -> str:
    return "\n".join([*caption(report), "", "per-token decode, p50 ms", *decode_table(report, markdown), "",
                      "prefill", *prefill_table(report, markdown), "", "goals", *goal_lines(report),
                      *(f"{name}: skipped ({why})" for name, why in (report.get("skipped") or {}).items())])


def plot_decode(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Two panels: per-token p50 against context, and past bytes against context (log-log)."""
    from .plot import load_pyplot

    plt = load_pyplot()
    fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
    models = list(dict.fromkeys(r["model"] for r in report["decode"]))
    for i, m in enumerate(models):
        pts = sorted((r["context"], r["p50_ms"], r["past_bytes"]) for r in report["decode"] if r["model"] == m)
        xs = [p[0] for p in pts]
        ax_t.plot(xs, [p[1] for p in pts], marker="o", markersize=3, label=label(m), color=f"C{i}")
        if m != "softmax-gqa" and m != "gpt2-hf":  # their cache bytes equal softmax's
            ax_b.plot(xs, [p[2] / 2**20 for p in pts], marker="o", markersize=3,
                      label="KV cache" if m == "softmax" else f"{m} state", color=f"C{i}")
    contexts = sorted({r["context"] for r in report["decode"]})
    for ax, ylabel in ((ax_t, "per-token p50 (ms)"), (ax_b, "past (MiB, all layers)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(contexts, [str(c) for c in contexts])
        ax.minorticks_off()
        ax.set_xlabel("context P (tokens)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    s = report["settings"]
    fig.suptitle(f"decode on the CPU (ORT; GPT-2 in PyTorch): {s['layers']} layers, D={s['hidden']}, "
                 f"{s['heads']} heads, {s['threads']} threads", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
