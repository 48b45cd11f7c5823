"""What is inside an export directory (seq2seq: optimum's encoder and decoder files): each file's I/O in one line,
then the state a decoding step carries per layer, with shapes and bytes per sequence."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..models.exported import ExportedModel
from .inspect import inspect_model

PAST = re.compile(r"past_key_values\.(\d+)\.(.+)")


def inspect_directory(path: str | os.PathLike) -> dict[str, Any]:
    """Every .onnx file of the directory (inspect_model), and the per-layer state of the file with the most past
    inputs; ValueError in one line when the directory holds no ONNX file."""
    path = Path(path)
    files = export_files(path)
    infos = [inspect_model(f) for f in files]
    widest = max(infos, key=lambda i: sum(PAST.fullmatch(x["name"]) is not None for x in i["inputs"]))
    exported = ExportedModel.read(files[0])
    return {"path": str(path), "size_bytes": sum(i["size_bytes"] for i in infos), "files": infos,
            "state_file": Path(widest["path"]).name, "layers": _layers(widest),
            "attention": exported.spec.describe_attention(exported.config)}


def export_files(path: Path, merged: bool = True) -> list[Path]:
    """The files of the export in this directory, in the family's order (what export wrote: other files are not
    read), the merged ones with `merged`. ValueError in one line when no file of the directory is part of an export
    directory, or when one of its parts is missing (a merged file is optional: exports before it lack it)."""
    path = Path(path)
    for f in sorted(path.glob("*.onnx")):
        try:
            exported = ExportedModel.read(f)
        except ValueError:
            continue
        spec = exported.spec
        if spec is None or not spec.export_parts(exported.config):
            continue
        names = [n for _, n in spec.export_parts(exported.config)]
        missing = [n for n in names if not (path / n).is_file()]
        if missing:
            raise ValueError(f"{path} has no {missing[0]}: a {spec.family} export directory holds {', '.join(names)}")
        names += [m[0] for m in spec.merged_parts(exported.config)] if merged else []
        return [path / n for n in names if (path / n).is_file()]
    raise ValueError(f"{path} is a directory with no exported model's files: inspect takes an ONNX file or an "
                     "export directory (seq2seq: encoder_model.onnx, decoder_model.onnx, ...)")


def _layers(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The file's state tensors (inspect.state_tensors) grouped by layer, named within it."""
    layers: dict[int, list[dict[str, Any]]] = {}
    for t in (info["state"] or {}).get("tensors", []):
        m = PAST.fullmatch(t["name"])
        if m:
            layers.setdefault(int(m.group(1)), []).append({**t, "name": m.group(2)})
    return [{"layer": i, "tensors": layers[i]} for i in sorted(layers)]


def format_directory_report(info: dict[str, Any]) -> str:
    lines = [f"{info['path']}  (export directory, {len(info['files'])} files, {info['size_bytes'] / 1e6:.2f} MB)"]
    for f in info["files"]:
        ins = [i["name"] for i in f["inputs"] if not PAST.fullmatch(i["name"])]
        past = len(f["inputs"]) - len(ins)
        outs = [o["name"] for o in f["outputs"] if not o["name"].startswith("present.")]
        present = len(f["outputs"]) - len(outs)
        lines.append(f"  {Path(f['path']).name} ({f['size_bytes'] / 1e6:.2f} MB, {f['weight_dtype']} weights): "
                     f"{', '.join(ins)}{f' + {past} past_key_values.*' if past else ''} -> {', '.join(outs)}"
                     f"{f' + {present} present.*' if present else ''}")
    if info["layers"]:
        lines.append(f"  state per layer ({info['state_file']}'s past inputs; per sequence):")
        fixed = grows = 0
        for layer in info["layers"]:
            parts = []
            for t in layer["tensors"]:
                how = f"{t['bytes'] / 1024:.1f} KiB" if t["fixed"] else f"{t['bytes'] / 1024:.2f} KiB per token"
                parts.append(f"{t['name']} {t['dtype']} {t['shape']} {how}")
                fixed += t["bytes"] if t["fixed"] else 0
                grows += 0 if t["fixed"] else t["bytes"]
            lines.append(f"    layer {layer['layer']}: " + "; ".join(parts))
        total = [f"{fixed / 1024:.1f} KiB per sequence, whatever the source and target length"] if fixed else []
        total += [f"{grows / 1024:.2f} KiB per token of source or target (K/V)"] if grows else []
        lines.append("  state between steps: " + " + ".join(total))
    c = info["files"][0].get("flurka_config")
    if c:
        lines.append(f"  model: task={c['task']} {info['attention']} layers={c['num_layers']} "
                     f"hidden={c['hidden_size']} heads={c['num_heads']} k={c['low_rank']} N_max={c['max_seq_len']}")
    return "\n".join(lines)
