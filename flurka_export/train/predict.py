"""Logits of a PyTorch model and of an ONNX file over the same batches: what evaluate.py and int8_eval.py
both compare."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def torch_predict(model: nn.Module, batches: Iterable[tuple[torch.Tensor, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) over all batches; each batch is (*inputs, labels)."""
    model.eval()
    logits, labels = [], []
    for *inputs, y in batches:
        logits.append(model(*inputs).float().numpy())
        labels.append(y.numpy())
    return np.concatenate(logits), np.concatenate(labels)


def onnx_predict(path: str | Path, batches: Iterable[tuple[torch.Tensor, ...]],
                 input_names: Sequence[str] | None = None) -> np.ndarray:
    """Logits from ONNX Runtime (CPU) for the same batches; inputs are fed by position."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = list(input_names) if input_names else [i.name for i in sess.get_inputs()]
    out = []
    for *inputs, _ in batches:
        feed = {name: t.numpy() for name, t in zip(names, inputs[:len(names)], strict=True)}
        out.append(sess.run(None, feed)[0].astype(np.float32))
    return np.concatenate(out)
