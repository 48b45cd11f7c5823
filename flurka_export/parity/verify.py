"""`verify`: run the user's model in PyTorch, ONNX Runtime and TensorRT on the same inputs and
compare every output against PyTorch, with a terminal table and a JSON report."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from pathlib import Path
from typing import Any

import onnx

from ..models import FlurkaConfig, load_pretrained
from ..onnx_io import META_DTYPE, exported_config, exported_max_seq_len, load_onnx, metadata
from ..utils import atomic_path
from .compare import DEFAULT_TOLERANCES, Comparison, compare_arrays
from .inputs import Shape, default_shapes, make_inputs, parse_shapes
from .layer_outputs import with_layer_outputs

RUNTIMES = ("torch", "ort", "trt")


@dataclasses.dataclass
class VerifyOptions:
    runtimes: tuple[str, ...] = RUNTIMES
    shapes: str | None = None
    seed: int = 0
    atol: float | None = None
    rtol: float | None = None
    per_layer: bool = False
    vs_softmax: bool = False
    require: tuple[str, ...] = ()
    engine: str | None = None
    plugin: str | None = None
    build_engine: bool = False
    providers: list[str] | None = None


@dataclasses.dataclass
class VerifyReport:
    passed: bool
    rows: list[dict[str, Any]]
    skipped: dict[str, str]
    first_divergence: dict[str, str]
    softmax_error: list[dict[str, Any]] | None
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def onnx_dtype(model: onnx.ModelProto) -> str:
    props = metadata(model)
    if props.get(META_DTYPE) in DEFAULT_TOLERANCES:
        return props[META_DTYPE]
    names = {onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16"}
    for t in model.graph.initializer:
        if t.data_type in names:
            return names[t.data_type]
    return "fp32"


def _check_matches(config: FlurkaConfig, model: onnx.ModelProto, onnx_path: str) -> None:
    exported = exported_config(model)
    if exported is None:
        return
    diff = [k for k, v in config.to_dict().items() if k in exported and exported[k] != v]
    if diff:
        details = ", ".join(f"{k}: checkpoint {getattr(config, k)!r} vs ONNX {exported[k]!r}" for k in diff)
        raise ValueError(f"{onnx_path} was exported from a different model config ({details})")


def _versions() -> dict[str, str]:
    import onnxruntime
    import torch

    versions = {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                "python": platform.python_version()}
    try:
        import tensorrt

        versions["tensorrt"] = tensorrt.__version__
    except ImportError:
        versions["tensorrt"] = "not installed"
    import polygraphy

    versions["polygraphy"] = polygraphy.__version__
    return versions


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _trt_runner(opts: VerifyOptions, onnx_path: str) -> Any:
    """A Polygraphy TrtRunner with the plugin loaded, or raise RuntimeError saying why not."""
    try:
        from ..trt import make_trt_runner
    except ImportError as e:
        raise RuntimeError(f"TensorRT support is unavailable: {e}") from None
    return make_trt_runner(engine=opts.engine, onnx_path=onnx_path if opts.build_engine else None,
                           plugin=opts.plugin)


def verify(checkpoint: str | os.PathLike, onnx_path: str | os.PathLike, options: VerifyOptions | None = None,
           progress: Any = None) -> VerifyReport:
    from ..runtimes.ort_runner import make_ort_runner
    from ..runtimes.torch_runner import TorchRunner

    opts = options or VerifyOptions()
    unknown = sorted(set(opts.runtimes) - set(RUNTIMES))
    if unknown:
        raise ValueError(f"unknown runtimes {unknown}; allowed: {', '.join(RUNTIMES)}")
    model = load_pretrained(checkpoint)
    config: FlurkaConfig = model.config
    onnx_model = load_onnx(onnx_path)
    _check_matches(config, onnx_model, str(onnx_path))
    dtype = onnx_dtype(onnx_model)
    atol = opts.atol if opts.atol is not None else DEFAULT_TOLERANCES[dtype][0]
    rtol = opts.rtol if opts.rtol is not None else DEFAULT_TOLERANCES[dtype][1]
    export_max = exported_max_seq_len(onnx_model)
    shapes = parse_shapes(opts.shapes, config) if opts.shapes else default_shapes(config, export_max)
    float_dtype = {"fp32": "float32", "fp16": "float16", "bf16": "float32"}[dtype]

    mapping: dict[str, str] = {}
    if opts.per_layer:
        onnx_model, mapping = with_layer_outputs(onnx_model)
    rename = {v: k for k, v in mapping.items()}

    runners: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if "ort" in opts.runtimes:
        runners["ort"] = make_ort_runner(onnx_model.SerializeToString(), opts.providers)
    if "trt" in opts.runtimes:
        try:
            runners["trt"] = _trt_runner(opts, str(onnx_path))
        except RuntimeError as e:
            skipped["trt"] = str(e)
    reference = TorchRunner(model, capture_layers=opts.per_layer)

    rows: list[dict[str, Any]] = []
    first: dict[str, str] = {}
    with reference:
        active = {}
        for name, runner in runners.items():
            try:
                runner.activate()
                active[name] = runner
            except Exception as e:  # a runtime that cannot load the model is reported, not fatal
                skipped[name] = f"could not load the model: {type(e).__name__}: {e}"
        try:
            for si, shape in enumerate(shapes):
                feed = make_inputs(config, shape, seed=opts.seed + si, float_dtype=float_dtype)
                ref = reference.infer(feed, check_inputs=False)
                for name, runner in active.items():
                    got = runner.infer(feed, check_inputs=False)
                    got = {rename.get(k, k): v for k, v in got.items()}
                    for out_name in ref:
                        if out_name not in got:
                            continue
                        c = compare_arrays(out_name, ref[out_name], got[out_name], atol, rtol)
                        rows.append({"shape": f"{shape[0]}x{shape[1]}", "runtime": name, **c.to_dict()})
                        if not c.passed and name not in first and out_name.startswith("layer"):
                            first[name] = out_name
                    if progress:
                        progress(shape, name)
        finally:
            for runner in active.values():
                runner.deactivate()

    for r in opts.require:
        if r in skipped or (r != "torch" and r not in runners):
            skipped.setdefault(r, "not run")
    failed_required = [r for r in opts.require if r in skipped]
    passed = all(r["passed"] for r in rows) and not failed_required
    softmax = softmax_error(model, shapes, opts.seed) if opts.vs_softmax else None
    meta = {
        "checkpoint": str(checkpoint), "onnx": str(onnx_path), "dtype": dtype, "atol": atol, "rtol": rtol,
        "shapes": [f"{b}x{n}" for b, n in shapes], "seed": opts.seed, "runtimes": list(opts.runtimes),
        "required": list(opts.require), "failed_required": failed_required, "versions": _versions(),
        "device": _device(), "attention": config.attention, "task": config.task,
    }
    return VerifyReport(passed, rows, skipped, dict(sorted(first.items())), softmax, meta)


def softmax_error(model: Any, shapes: list[Shape], seed: int) -> list[dict[str, Any]]:
    """Per layer: ||attn_flurka(x) - attn_softmax(x)|| / ||attn_softmax(x)|| on the FLuRKA model's own
    layer inputs, with the same Q/K/V/O weights (the paper's approximation-quality question)."""
    import torch

    from ..models.attention import FlurkaSelfAttention
    from ..runtimes.torch_runner import _layers

    config: FlurkaConfig = model.config
    exact_cfg = config.replace(attention="softmax")
    layers = _layers(model)
    exact = []
    for i, layer in enumerate(layers):
        att = FlurkaSelfAttention(exact_cfg, i)
        att.load_state_dict({k: v for k, v in layer.attention.state_dict().items() if k.split(".")[0] in
                             ("query", "key", "value", "out")})
        exact.append(att.eval())
    sums = [[0.0, 0.0] for _ in layers]
    hooks = []

    def hook_for(i: int):  # noqa: ANN202
        def hook(module, args, output):  # noqa: ANN001, ANN202
            x, mask = args[0], args[1] if len(args) > 1 else None
            ref = exact[i](x, mask)
            keep = torch.ones(x.shape[:2], dtype=torch.bool) if mask is None else mask.bool()
            sums[i][0] += float(((output - ref)[keep] ** 2).sum())
            sums[i][1] += float((ref[keep] ** 2).sum())
        return hook

    for i, layer in enumerate(layers):
        hooks.append(layer.attention.register_forward_hook(hook_for(i)))
    try:
        with torch.no_grad():
            for si, shape in enumerate(shapes):
                feed = make_inputs(config, shape, seed=seed + si)
                model(**{k: torch.from_numpy(v) for k, v in feed.items()})
    finally:
        for h in hooks:
            h.remove()
    return [{"layer": i, "relative_error": (num / den) ** 0.5 if den else 0.0} for i, (num, den) in enumerate(sums)]


def format_table(report: VerifyReport) -> str:
    out = []
    m = report.meta
    out.append(f"verify {m['onnx']} against {m['checkpoint']} ({m['attention']}, {m['task']}, {m['dtype']}; "
               f"atol={m['atol']:g} rtol={m['rtol']:g}; seed {m['seed']}; device {m['device']})")
    header = f"{'pair':<16} {'shape':<10} {'output':<20} {'max abs':>10} {'max rel':>10} {'mean abs':>10}  result"
    out.append(header)
    out.append("-" * len(header))
    for r in report.rows:
        out.append(f"{'torch vs ' + r['runtime']:<16} {r['shape']:<10} {r['output']:<20} {r['max_abs']:>10.3g} "
                   f"{r['max_rel']:>10.3g} {r['mean_abs']:>10.3g}  {'pass' if r['passed'] else 'FAIL'}")
    for name, why in report.skipped.items():
        req = " (required: counts as a failure)" if name in m["required"] else ""
        out.append(f"{name}: skipped: {why}{req}")
    for name, where in report.first_divergence.items():
        out.append(f"{name}: first diverging tensor: {where}")
    if report.softmax_error is not None:
        out.append("approximation error against exact softmax attention (same weights), per layer:")
        out.extend(f"  layer {e['layer']}: relative error {e['relative_error']:.4f}" for e in report.softmax_error)
    out.append(f"RESULT: {'PASS' if report.passed else 'FAIL'}")
    return "\n".join(out)


def write_report(report: VerifyReport, path: str | os.PathLike) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def parity_line(report: VerifyReport) -> str:
    """One line for the demo: the worst logits error per runtime."""
    parts = []
    for rt in sorted({r["runtime"] for r in report.rows}):
        logits = [r for r in report.rows if r["runtime"] == rt and r["output"] == "logits"]
        worst = max(r["max_abs"] for r in logits)
        parts.append(f"torch vs {rt}: max abs {worst:.2e} over {len(logits)} shapes")
    return "parity: " + "; ".join(parts) + f" -> {'PASS' if report.passed else 'FAIL'}"


__all__ = ["Comparison", "VerifyOptions", "VerifyReport", "format_table", "parity_line", "verify", "write_report"]
