"""One decode benchmark run (bench/decode.py says what is timed): build and export the models, check the
GroupQueryAttention baseline against PyTorch, time every model at every context in interleaved rounds, then
prefill. Returns a JSON-able report: settings, environment, gqa_check, decode rows, prefill rows."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import temporary_directory
from .decode import DecodeSettings, Gpt2Hf, GqaOrt, OursOrt, lm_config
from .timing import Timings, set_torch_threads, time_fn

GQA_TOLERANCE = 1e-4  # max |logits difference| / max(1, max |logits|) against PyTorch


def _softmax_model(settings: DecodeSettings) -> Any:
    import torch

    from ..models import build_model

    torch.manual_seed(settings.seed)
    return build_model(lm_config(settings, "softmax"))


def missing_baselines(settings: DecodeSettings) -> dict[str, str]:
    """Baselines asked for that cannot run here, with the reason (transformers is optional)."""
    if "gpt2-hf" not in settings.baselines:
        return {}
    try:
        import transformers  # noqa: F401
    except ImportError:
        return {"gpt2-hf": "transformers is not installed (pip install transformers)"}
    return {}


def build_targets(settings: DecodeSettings, workdir: Path) -> tuple[list[Any], Any]:
    """Every model to time, in table order (ours first), and the softmax model (None if not built)."""
    import torch

    from ..export import export_onnx
    from ..models import build_model

    targets: list[Any] = []
    softmax = None
    for kind in settings.kinds:
        torch.manual_seed(settings.seed)
        model = _softmax_model(settings) if kind == "softmax" else build_model(lm_config(settings, kind))
        softmax = model if kind == "softmax" else softmax
        path = export_onnx(model, workdir / f"{kind}.onnx")
        targets.append(OursOrt(kind, str(path), model.config, settings.threads, settings.seed))
    if "softmax-gqa" in settings.baselines:
        softmax = softmax if softmax is not None else _softmax_model(settings)
        targets.append(GqaOrt(softmax, settings.max_len, settings.threads, settings.seed))
    if "gpt2-hf" in settings.baselines and not missing_baselines(settings):
        targets.append(Gpt2Hf(settings))
    return targets, softmax


def check_gqa(gqa: GqaOrt, softmax_model: Any, past_len: int) -> dict[str, Any]:
    """The GroupQueryAttention graph against the PyTorch softmax model on the same past of `past_len` random
    K/V rows: equal logits (it attends over the P cached tokens, not only the new one), and past and present
    one buffer."""
    import torch

    dec, c = gqa.decoder, softmax_model.config
    dec.fill(past_len, seed=gqa.seed)
    ids = np.array([[1]])
    dec.bind_step(ids, past_len)
    dec.run()
    got = dec.logits()[:, -1].copy()
    past = [tuple(torch.from_numpy(dec.buffers[f"{i}.{n}"].numpy()[:, :, :past_len].copy()) for n in ("key", "value"))
            for i in range(c.num_layers)]
    with torch.no_grad():
        def ref(past: Any) -> np.ndarray:
            mask = torch.ones(1, past[0][0].shape[2] + 1, dtype=torch.long)
            out = softmax_model(torch.from_numpy(ids), mask, torch.tensor([[past_len]]), past_key_values=past,
                                use_cache=True)[0]
            return out[:, -1].numpy()

        want = ref(past)
        alone = ref([tuple(t[:, :, :0] for t in layer) for layer in past])  # the new token only, same position
    scale = max(1.0, float(np.abs(want).max()))
    diff = float(np.abs(got - want).max())
    changes = float(np.abs(want - alone).max())
    shares = dec.shares_buffers()
    return {"past_len": past_len, "max_abs_diff": diff, "tolerance": GQA_TOLERANCE * scale,
            "past_changes_logits_by": changes, "shares_buffers": shares,
            "passed": diff <= GQA_TOLERANCE * scale and changes > 100 * diff and shares}


def _timed(settings: DecodeSettings, fn: Any) -> Timings:
    return time_fn(fn, iters=settings.iters_per_round(), warmup=settings.warmup, budget_s=settings.budget_s)


def _row(target: Any, timings: Timings, **extra: Any) -> dict[str, Any]:
    return {"model": target.name, "runtime": target.runtime, **extra, "p50_ms": round(timings.p50, 4),
            "p90_ms": round(timings.p90, 4), "spread": round(timings.spread, 3), "unstable": timings.unstable,
            "calls": len(timings.times_ms)}


def time_decode(settings: DecodeSettings, targets: list[Any], log: Any) -> list[dict[str, Any]]:
    rows = []
    for p in sorted(settings.contexts):
        calls = {t.name: t.at(p) for t in targets}
        times: dict[str, list[float]] = {t.name: [] for t in targets}
        for _ in range(settings.rounds):
            for t in targets:
                times[t.name] += _timed(settings, calls[t.name]).times_ms
        for t in targets:
            timings = Timings(tuple(times[t.name]))
            row = _row(t, timings, context=p, past_bytes=t.past_bytes(p))
            if hasattr(t, "allocated_bytes"):
                row["allocated_bytes"] = t.allocated_bytes()
            rows.append(row)
            log(f"  decode {t.name:<12} P={p:<6} p50 {timings.p50:8.3f} ms  spread {timings.spread:.2f}")
        del calls
        for t in targets:
            t.release()
    return rows


def time_prefill(settings: DecodeSettings, targets: list[Any], log: Any) -> list[dict[str, Any]]:
    rows, n = [], settings.prefill_len
    calls = {t.name: t.prefill(n) for t in targets if hasattr(t, "prefill")}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(settings.rounds):
        for name, call in calls.items():
            times[name] += _timed(settings, call).times_ms
    for t in targets:
        if t.name in calls:
            timings = Timings(tuple(times[t.name]))
            rows.append(_row(t, timings, tokens=n, tok_per_s=round(n / timings.p50 * 1e3, 1)))
            log(f"  prefill {t.name:<12} T={n:<6} p50 {timings.p50:8.2f} ms")
        t.release()
    return rows


def run_decode(settings: DecodeSettings, progress: bool = True) -> dict[str, Any]:
    from .run import _load_average, environment

    settings.validate()
    set_torch_threads(settings.threads)

    def log(line: str) -> None:
        if progress:
            print(line, file=sys.stderr, flush=True)

    load_at_start = _load_average()
    skipped = missing_baselines(settings)
    with temporary_directory("flurka-decode-") as tmp:
        log("building and exporting the models")
        targets, softmax = build_targets(settings, Path(tmp))
        gqa = next((t for t in targets if isinstance(t, GqaOrt)), None)
        check = check_gqa(gqa, softmax, min(settings.contexts)) if gqa else None
        if check:
            log(f"  GroupQueryAttention check: {'passed' if check['passed'] else 'FAILED'} ({check})")
        decode = time_decode(settings, targets, log)
        prefill = time_prefill(settings, targets, log)
    return {"settings": dataclasses.asdict(settings), "environment": environment(load_at_start),
            "gqa_check": check, "decode": decode, "prefill": prefill, "skipped": skipped}
