"""`verify`: run the user's model in PyTorch and in the other runtimes on the same inputs and compare
every output against PyTorch.

Verdict rules: PASS needs at least one comparison between PyTorch and another runtime, and every
comparison within tolerance. A runtime the user named (`runtimes`, `require`, an engine) that did not
run is a failure with its reason, unless it is also named in `optional`. Without named runtimes, every
installed runtime runs and the ones that cannot are listed, not counted.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from typing import Any

import onnx

from ..models import FlurkaConfig, load_pretrained
from ..models.exported import ExportedModel
from ..onnx_io import load_onnx
from ..runtimes import REFERENCE, RunRequest, RuntimeUnavailable, get_runtime, runtime_names
from .agreement import is_quantized
from .comparator import compare_results, consistency_rows, run_all, worst_per_step
from .compare import DEFAULT_TOLERANCES, check_tolerances
from .inputs import default_shapes, parse_shapes
from .layer_outputs import with_layer_outputs
from .report import VerifyReport, format_table, parity_line, verdict_line, write_report
from .softmax_error import softmax_error

VERIFY_BEAM_STEPS = 8  # new tokens of verify's beam search (export directories)


@dataclasses.dataclass
class VerifyOptions:
    runtimes: tuple[str, ...] | None = None  # None: every installed runtime, none of them required
    shapes: str | None = None
    seed: int = 0
    atol: float | None = None
    rtol: float | None = None
    per_layer: bool = False
    vs_softmax: bool = False
    require: tuple[str, ...] = ()  # must run (added to `runtimes`)
    optional: tuple[str, ...] = ()  # may be skipped without failing
    engine: str | None = None
    plugin: str | None = None
    build_engine: bool = False
    providers: list[str] | None = None


def onnx_dtype(model: onnx.ModelProto) -> str:
    """fp32, fp16 or bf16: the flurka.dtype metadata, else the float type of the weights."""
    return ExportedModel.read(model).dtype


def _check_matches(config: FlurkaConfig, model: ExportedModel, onnx_path: str) -> None:
    exported = model.config_dict
    if exported is None:
        return
    diff = [k for k, v in config.to_dict().items() if k in exported and exported[k] != v]
    if diff:
        details = ", ".join(f"{k}: checkpoint {getattr(config, k)!r} vs ONNX {exported[k]!r}" for k in diff)
        raise ValueError(f"{onnx_path} was exported from a different model config ({details})")


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist, key in (("torch", "torch"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime"),
                      ("polygraphy", "polygraphy"), ("tensorrt", "tensorrt")):
        try:
            versions[key] = md.version(dist)
        except md.PackageNotFoundError:
            versions[key] = "not installed"
    return versions


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _plan(opts: VerifyOptions) -> tuple[list[str], set[str]]:
    """(runtimes to try besides the reference, runtimes whose absence fails the check)."""
    named = list(opts.runtimes or ()) + list(opts.require)
    if opts.engine or opts.build_engine:
        named.append("trt")
    for name in [*named, *opts.optional]:
        get_runtime(name)  # unknown names: one clear error
    explicit = opts.runtimes is not None or bool(opts.require) or opts.engine or opts.build_engine
    wanted = list(dict.fromkeys(named)) if explicit else list(runtime_names())
    wanted = [n for n in wanted if n != REFERENCE]
    required = {n for n in named if n != REFERENCE} - set(opts.optional)
    return wanted, required


def _start_runners(wanted: list[str], make: Any, skipped: dict[str, str]) -> dict[str, Any]:
    """`make(name)` -> {label: started runner} for each wanted runtime; one that cannot start is listed in
    `skipped` with the reason, not fatal."""
    active = {}
    for name in wanted:
        try:
            active.update(make(name))
        except RuntimeUnavailable as e:
            skipped[name] = str(e)
        except Exception as e:  # a runtime that cannot load the model is reported, not fatal
            skipped[name] = f"could not load the model: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
    return active


def _one_file_runner(request: RunRequest) -> Any:
    def make(name: str) -> dict[str, Any]:
        runner = get_runtime(name).make_runner(request)
        runner.activate()
        return {name: runner}
    return make


def _first_divergence(rows: list[dict[str, Any]], order: dict[str, int]) -> dict[str, str]:
    """Per runtime, the earliest per-layer tensor (in model order) that fails on any shape."""
    first: dict[str, str] = {}
    for r in rows:
        name, out = r["runtime"], r["output"]
        if not r["passed"] and out.startswith("layer") and (name not in first or order[out] < order[first[name]]):
            first[name] = out
    return first


def _summary(rows: list[dict[str, Any]], skipped: dict[str, str], nshapes: int) -> str:
    """What ran (empty when nothing did: that is a failure, and the failures say it once)."""
    compared = sorted({r["runtime"] for r in rows})
    parts = [f"{REFERENCE} vs {', '.join(compared)} on {nshapes} shape{'s' if nshapes != 1 else ''}"] if compared else []
    parts += [f"{n} {'not installed' if 'not installed' in why else 'did not run'}" for n, why in skipped.items()]
    return "; ".join(parts)


def _settings(opts: VerifyOptions, config: FlurkaConfig, exported: ExportedModel) -> dict[str, Any]:
    """Tolerances, shapes and input dtype of this run (from the options and the exported file)."""
    dtype = exported.dtype
    atol = opts.atol if opts.atol is not None else DEFAULT_TOLERANCES[dtype][0]
    rtol = opts.rtol if opts.rtol is not None else DEFAULT_TOLERANCES[dtype][1]
    check_tolerances(atol, rtol)
    export_max = exported.max_seq_len
    shapes = parse_shapes(opts.shapes, config, export_max) if opts.shapes else default_shapes(config, export_max)
    return {"dtype": dtype, "atol": atol, "rtol": rtol, "shapes": shapes,
            "float_dtype": {"fp32": "float32", "fp16": "float16", "bf16": "float32"}[dtype],
            "quantized": is_quantized(exported.proto),  # int8 weights: judged by the int8 rules (parity/agreement.py)
            "tolerances_given": opts.atol is not None or opts.rtol is not None}


def _infer(runner: Any, rename: dict[str, str]) -> Any:
    return lambda feed: {rename.get(k, k): v for k, v in runner.infer(feed, check_inputs=False).items()}


def verify(checkpoint: str | os.PathLike, onnx_path: str | os.PathLike, options: VerifyOptions | None = None,
           progress: Any = None) -> VerifyReport:
    opts = options or VerifyOptions()
    wanted, required = _plan(opts)
    model = load_pretrained(checkpoint)
    config: FlurkaConfig = model.config
    if os.path.isdir(onnx_path):  # an export directory (seq2seq: encoder and decoder files)
        return _verify_directory(checkpoint, onnx_path, opts, progress, model, wanted, required)
    exported = ExportedModel.read(load_onnx(onnx_path))  # weights loaded: the runtimes get this proto
    _check_matches(config, exported, str(onnx_path))
    s = _settings(opts, config, exported)
    cases = config.spec.verify_cases(config, s["shapes"], seed=opts.seed, float_dtype=s["float_dtype"])
    onnx_model, mapping = with_layer_outputs(exported.proto) if opts.per_layer else (exported.proto, {})
    rename = {v: k for k, v in mapping.items()}
    request = RunRequest(torch_model=model, onnx_model=onnx_model, onnx_path=str(onnx_path), dtype=s["dtype"],
                         capture_layers=opts.per_layer, engine=opts.engine, plugin=opts.plugin,
                         build_engine=opts.build_engine, providers=opts.providers)
    skipped: dict[str, str] = {}
    reference = get_runtime(REFERENCE).make_runner(request)
    with reference:
        active = _start_runners(wanted, _one_file_runner(request), skipped)
        try:
            ref, results = run_all(_infer(reference, {}), {n: _infer(r, rename) for n, r in active.items()}, cases,
                                   progress)
        finally:
            for runner in active.values():
                runner.deactivate()
    return _report(checkpoint, onnx_path, opts, model, s, cases, ref, results, skipped, wanted, required)


def _verify_directory(checkpoint: str | os.PathLike, directory: str | os.PathLike, opts: VerifyOptions,
                      progress: Any, model: Any, wanted: list[str], required: set[str]) -> VerifyReport:
    """Every file of the directory against the checkpoint; the family's cases and a beam search per source,
    each runtime running the parts through one `run(feed, part)` (parity/parts.py)."""
    from ..generate import GenerationConfig
    from .parts import TorchParts, beam_cases, parts_runners, read_parts

    config = model.config
    if opts.per_layer:
        raise ValueError("--per-layer hooks the layers of one ONNX file; it is not available for an export "
                         f"directory such as {directory}")
    if not config.spec.export_parts(config):
        raise ValueError(f"{directory} is a directory, but a {config.spec.family} model exports to one ONNX file: "
                         "pass that .onnx file")
    parts = read_parts(directory, config.spec, config)
    for path, exported in parts.values():
        _check_matches(config, exported, path)
    first = next(iter(parts.values()))[1]
    s = _settings(opts, config, first)
    cases = config.spec.verify_cases(config, s["shapes"], seed=opts.seed, float_dtype=s["float_dtype"])
    gen = GenerationConfig.read(checkpoint)
    cases += beam_cases(cases, config, gen, VERIFY_BEAM_STEPS)
    skipped: dict[str, str] = {}
    reference = TorchParts(model, first.max_seq_len or config.max_seq_len)
    active = _start_runners(wanted, lambda name: parts_runners(name, directory, parts, model, s["dtype"],
                                                              opts.providers), skipped)
    try:
        ref, results = run_all(reference, active, cases, progress)
    finally:
        for runner in active.values():
            runner.deactivate()
    return _report(checkpoint, directory, opts, model, s, cases, ref, results, skipped, wanted, required)


def _report(checkpoint: Any, onnx_path: Any, opts: VerifyOptions, model: Any, s: dict[str, Any], cases: list,
            ref: Any, results: Any, skipped: dict[str, str], wanted: list[str], required: set[str]) -> VerifyReport:
    """Compare every runtime's steps against the reference and each case's own consistency; the verdict."""
    config = model.config
    tol = dict(quantized=s["quantized"], atol=s["atol"], rtol=s["rtol"], tolerances_given=s["tolerances_given"])
    rows = compare_results(ref, results, **tol) + consistency_rows(cases, results, **tol)
    order = {name: i for i, name in enumerate(dict.fromkeys(r["output"] for r in rows))}  # model order of tensors
    first = _first_divergence(rows, order)
    failed_required = sorted(r for r in required if r in skipped)
    failures = [f"{r} was asked for but did not run" for r in failed_required]
    failures += [f"torch vs {r} outside tolerance" for r in sorted({r["runtime"] for r in rows if not r["passed"]})]
    if not rows:
        failures.append("nothing was compared: PASS needs torch and at least one other runtime")
    meta = {
        "checkpoint": str(checkpoint), "onnx": str(onnx_path), "dtype": s["dtype"], "atol": s["atol"],
        "rtol": s["rtol"], "shapes": [f"{b}x{n}" for b, n in s["shapes"]], "seed": opts.seed,
        "runtimes": [REFERENCE, *wanted], "required": sorted(required), "optional": list(opts.optional),
        "failed_required": failed_required, "versions": _versions(), "device": _device(),
        "attention": config.attention, "task": config.task, "family": config.spec.family,
        "quantized": s["quantized"], "tolerances_given": s["tolerances_given"],
        "worst_per_step": worst_per_step(rows),
    }
    softmax = softmax_error(model, s["shapes"], opts.seed) if opts.vs_softmax else None
    return VerifyReport(not failures, rows, skipped, dict(sorted(first.items())), softmax, meta,
                        _summary(rows, skipped, len(s["shapes"])), failures)


__all__ = ["VerifyOptions", "VerifyReport", "format_table", "onnx_dtype", "parity_line", "verdict_line", "verify",
           "write_report"]
