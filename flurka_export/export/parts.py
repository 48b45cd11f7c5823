"""Families exported as a directory of ONNX files (seq2seq: optimum's encoder_model.onnx, decoder_model.onnx,
decoder_with_past_model.onnx, decoder_model_merged.onnx): each part traced and finished as a one-file export, the directory written
atomically (every file or none; other files of an existing directory are kept)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from ..onnx_io import save_model
from ..passes.merge_decoders import merge_decoders
from ..utils import atomic_path


def export_parts(model: nn.Module, path: str | os.PathLike, trace: Callable[[dict[str, Any]], Any], torch_dtype: Any,
                 max_seq_len: int, *, external_data: bool | None, overwrite: bool) -> Path:
    """Every part of the model's family through `trace` (one part's description -> its finished ONNX model), then
    the files written together."""
    spec = model.config.spec
    path = Path(path)
    traced = {part: (file_name, trace(spec.export_part(model, part, torch_dtype, max_seq_len)))
              for part, file_name in spec.export_parts(model.config)}
    graphs = list(traced.values())
    for file_name, first, later in spec.merged_parts(model.config):  # optimum's decoder_model_merged.onnx
        graphs.append((file_name, merge_decoders(traced[first][1], traced[later][1])))
    with atomic_path(path, is_dir=True, overwrite=overwrite) as tmp:
        for file_name, graph in graphs:
            save_model(graph, tmp / file_name, external_data, overwrite=True)
    return path
