"""Golden outputs: check an engine on a machine that has TensorRT but not the checkpoint.

`save_golden` (here, with PyTorch and the checkpoint) writes one .npz: the inputs, the PyTorch outputs (and
per-layer tensors), the tolerances and the versions. `check_golden` (on the GPU machine) runs a TensorRT plan, or
an ONNX file in ONNX Runtime, on those inputs and compares. The file holds plain arrays only (no pickle): the
metadata is JSON stored as bytes under GOLDEN_META.

Inputs come from the model's default shapes, or from a file (`--load-inputs`): an .npz with one array per model
input (`input_ids`, `attention_mask`) or several feeds as `N/input_ids`; or the JSON list of feeds that
Polygraphy's `--save-inputs` writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_path
from .compare import DEFAULT_TOLERANCES, compare_arrays

GOLDEN_FORMAT = "flurka-export golden outputs"
GOLDEN_VERSION = 1
GOLDEN_META = "__meta__"
PLAN_SUFFIXES = (".plan", ".engine", ".trt")

Feed = dict[str, np.ndarray]


@dataclasses.dataclass
class GoldenReport:
    passed: bool
    rows: list[dict[str, Any]]
    notes: list[str]
    meta: dict[str, Any]


def load_feeds(path: str | os.PathLike) -> list[Feed]:
    """Feeds from an .npz (`name` or `N/name` keys) or from Polygraphy's JSON input format."""
    path = Path(path)
    if path.suffix == ".json":
        from polygraphy.json import load_json  # Polygraphy's own format (arrays as .npy bytes, no pickle)

        data = load_json(str(path))
        feeds = data if isinstance(data, list) else [data]
        return [{k: np.asarray(v) for k, v in feed.items()} for feed in feeds]
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if not arrays:
        raise ValueError(f"{path} holds no arrays")
    if not any("/" in k for k in arrays):
        return [arrays]
    groups: dict[int, Feed] = {}
    for key, value in arrays.items():
        index, sep, name = key.partition("/")
        if not sep or not index.isdigit():
            raise ValueError(f"{path}: array {key!r} mixes plain and N/name keys; use one style")
        groups.setdefault(int(index), {})[name] = value
    return [groups[i] for i in sorted(groups)]


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _reference_outputs(checkpoint: str | os.PathLike, onnx_path: str | os.PathLike, feeds: list[Feed] | None,
                       shapes: str | None, seed: int, per_layer: bool) -> tuple[Any, str, list[Feed], list[Feed]]:
    """(config, dtype, feeds, PyTorch outputs per feed)."""
    from ..models import load_pretrained
    from ..models.exported import ExportedModel
    from ..runtimes.torch_runner import TorchRunner
    from .inputs import default_shapes, make_inputs, parse_shapes
    from .verify import _check_matches

    model = load_pretrained(checkpoint)
    exported = ExportedModel.read(onnx_path)  # read once: metadata, I/O (weights not loaded)
    onnx_model = exported.proto
    _check_matches(model.config, exported, str(onnx_path))
    dtype = exported.dtype
    if feeds is None:
        export_max = exported.max_seq_len
        cases = parse_shapes(shapes, model.config, export_max) if shapes else default_shapes(model.config, export_max)
        float_dtype = {"fp32": "float32", "fp16": "float16", "bf16": "float32"}[dtype]
        feeds = [make_inputs(model.config, s, seed=seed + i, float_dtype=float_dtype) for i, s in enumerate(cases)]
    wanted = {i.name for i in onnx_model.graph.input} - {t.name for t in onnx_model.graph.initializer}
    for i, feed in enumerate(feeds):
        if set(feed) != wanted:
            raise ValueError(f"input set {i} has {sorted(feed)}; the model takes {sorted(wanted)}")
    reference = TorchRunner(model, capture_layers=per_layer)
    with reference:
        outputs = [reference.infer(feed, check_inputs=False) for feed in feeds]
    return model.config, dtype, feeds, outputs


def save_golden(checkpoint: str | os.PathLike, onnx_path: str | os.PathLike, path: str | os.PathLike, *,
                shapes: str | None = None, seed: int = 0, atol: float | None = None, rtol: float | None = None,
                per_layer: bool = True, load_inputs: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write the golden file; returns its metadata."""
    import onnx
    import torch

    feeds = load_feeds(load_inputs) if load_inputs else None
    config, dtype, feeds, outputs = _reference_outputs(checkpoint, onnx_path, feeds, shapes, seed, per_layer)
    arrays: dict[str, np.ndarray] = {}
    cases = []
    for i, (feed, out) in enumerate(zip(feeds, outputs, strict=True)):
        arrays.update({f"{i}/in/{k}": np.asarray(v) for k, v in feed.items()})
        arrays.update({f"{i}/out/{k}": np.asarray(v) for k, v in out.items()})
        cases.append({"inputs": sorted(feed), "outputs": sorted(out),
                      "shape": "x".join(str(d) for d in next(iter(feed.values())).shape)})
    meta = {
        "format": GOLDEN_FORMAT, "format_version": GOLDEN_VERSION, "onnx": Path(onnx_path).name,
        "onnx_sha256": _sha256(onnx_path), "dtype": dtype,
        "atol": atol if atol is not None else DEFAULT_TOLERANCES[dtype][0],
        "rtol": rtol if rtol is not None else DEFAULT_TOLERANCES[dtype][1],
        "seed": seed, "inputs_from": Path(load_inputs).name if load_inputs else "generated",
        "attention": config.attention, "task": config.task, "cases": cases,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "python": platform.python_version()},
    }
    arrays[GOLDEN_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a bare path
            np.savez_compressed(f, **arrays)
    return meta


def read_golden(path: str | os.PathLike) -> tuple[dict[str, Any], list[Feed], list[Feed]]:
    """(metadata, feeds, expected outputs) of a golden file."""
    if not zipfile.is_zipfile(path):  # an .npz is a zip archive; refuse anything else before numpy looks at it
        raise ValueError(f"{path} is not a golden file of flurka-export (not an .npz archive)")
    with np.load(path, allow_pickle=False) as npz:
        if GOLDEN_META not in npz.files:
            raise ValueError(f"{path} is not a golden file of flurka-export (no {GOLDEN_META}); write one with "
                             "`flurka-export verify CKPT model.onnx --save-golden FILE.npz`")
        meta = json.loads(npz[GOLDEN_META].tobytes().decode())
        if meta.get("format") != GOLDEN_FORMAT or meta.get("format_version", 0) > GOLDEN_VERSION:
            raise ValueError(f"{path}: unsupported golden format {meta.get('format')!r} "
                             f"version {meta.get('format_version')!r}")
        feeds = [{k: npz[f"{i}/in/{k}"] for k in case["inputs"]} for i, case in enumerate(meta["cases"])]
        outputs = [{k: npz[f"{i}/out/{k}"] for k in case["outputs"]} for i, case in enumerate(meta["cases"])]
    return meta, feeds, outputs


def _runner(model: Path, plugin: str | os.PathLike | None, per_layer: bool) -> tuple[Any, str, dict[str, str]]:
    """(Polygraphy runner, runtime name, ONNX value name -> our tensor name)."""
    if model.suffix in PLAN_SUFFIXES:
        from ..runtimes.trt_runner import make_trt_runner

        try:
            return make_trt_runner(engine=model, plugin=plugin), "trt", {}
        except RuntimeError as e:  # TensorRT or the plugin missing: one sentence for the CLI
            raise ValueError(str(e)) from None
    if model.suffix != ".onnx":
        raise ValueError(f"{model}: expected a TensorRT plan ({', '.join(PLAN_SUFFIXES)}) or an .onnx file")
    from ..onnx_io import load_onnx
    from ..runtimes.ort_runner import make_ort_runner

    onnx_model = load_onnx(model)
    mapping: dict[str, str] = {}
    if per_layer:
        from .layer_outputs import with_layer_outputs

        onnx_model, mapping = with_layer_outputs(onnx_model)
    return make_ort_runner(onnx_model.SerializeToString()), "ort", {v: k for k, v in mapping.items()}


def check_golden(golden: str | os.PathLike, model: str | os.PathLike, *, plugin: str | os.PathLike | None = None,
                 atol: float | None = None, rtol: float | None = None) -> GoldenReport:
    """Run `model` (plan or ONNX) on the golden inputs and compare with the golden outputs it also produces."""
    meta, feeds, expected = read_golden(golden)
    model = Path(model)
    atol = meta["atol"] if atol is None else atol
    rtol = meta["rtol"] if rtol is None else rtol
    notes = []
    if model.suffix == ".onnx" and _sha256(model) != meta["onnx_sha256"]:
        notes.append(f"{model.name} differs from the ONNX file the golden outputs were made with ({meta['onnx']})")
    has_layers = any("." in k for out in expected for k in out)
    runner, name, rename = _runner(model, plugin, has_layers)
    rows = []
    with runner:
        for feed, want, case in zip(feeds, expected, meta["cases"], strict=True):
            got = {rename.get(k, k): v for k, v in runner.infer(feed, check_inputs=False).items()}
            for out_name in sorted(set(want) & set(got)):
                c = compare_arrays(out_name, want[out_name], got[out_name], atol, rtol)
                rows.append({"shape": case["shape"], "runtime": name, **c.to_dict()})
    compared = {r["output"] for r in rows}
    missing = sorted({k for out in expected for k in out if "." not in k} - compared)
    if missing:
        notes.append(f"the {name} model has no output named {', '.join(missing)}")
    passed = bool(rows) and all(r["passed"] for r in rows) and not missing
    return GoldenReport(passed, rows, notes, {**meta, "model": str(model), "atol": atol, "rtol": rtol})


def format_golden(report: GoldenReport) -> str:
    m = report.meta
    out = [f"check {m['model']} against golden outputs of {m['onnx']} ({m['attention']}, {m['task']}, {m['dtype']}; "
           f"atol={m['atol']:g} rtol={m['rtol']:g}; inputs: {m['inputs_from']}; made with torch "
           f"{m['versions']['torch']})"]
    for r in report.rows:
        out.append(f"golden vs {r['runtime']:<5} {r['shape']:<10} {r['output']:<20} max abs {r['max_abs']:.3g} "
                   f"max rel {r['max_rel']:.3g}  {'pass' if r['passed'] else 'FAIL'}")
    out += [f"note: {n}" for n in report.notes]
    out.append(f"RESULT: {'PASS' if report.passed else 'FAIL'}")
    return "\n".join(out)
