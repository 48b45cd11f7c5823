"""Predictions of a PyTorch model and of its ONNX file on the same batches, side by side."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .int8_eval import int8_report
from .predict import onnx_predict, torch_predict


@dataclasses.dataclass
class PredictionReport:
    examples: int
    torch_accuracy: float
    onnx_accuracy: float
    disagreements: int  # examples where the argmax differs between the two runtimes
    max_abs_logit_diff: float

    def summary(self) -> str:
        return (f"test accuracy  PyTorch {self.torch_accuracy:.4f}  ONNX Runtime {self.onnx_accuracy:.4f}  "
                f"({self.examples} examples, {self.disagreements} disagreements, "
                f"max |logit diff| {self.max_abs_logit_diff:.2e})")


def compare_predictions(torch_logits: np.ndarray, onnx_logits: np.ndarray, labels: np.ndarray) -> PredictionReport:
    pt, ox = torch_logits.argmax(-1), onnx_logits.argmax(-1)
    return PredictionReport(
        examples=len(labels),
        torch_accuracy=float((pt == labels).mean()),
        onnx_accuracy=float((ox == labels).mean()),
        disagreements=int((pt != ox).sum()),
        max_abs_logit_diff=float(np.abs(torch_logits - onnx_logits).max()) if len(labels) else 0.0,
    )


def export_and_compare(checkpoint: str | Path, onnx_path: str | Path,
                       batches: Callable[[], Iterable[tuple[torch.Tensor, ...]]],
                       **export_options: Any) -> PredictionReport:
    """Export the checkpoint to ONNX, then run the same batches through PyTorch and ONNX Runtime."""
    from ..export import export_onnx
    from ..models import load_pretrained

    model = load_pretrained(checkpoint)
    export_onnx(model, onnx_path, **export_options)  # export copies the model before any dtype change
    torch_logits, labels = torch_predict(model, batches())
    onnx_logits = onnx_predict(onnx_path, batches())
    return compare_predictions(torch_logits, onnx_logits, labels)


def export_test_results(checkpoint: str | Path, onnx_path: str | Path,
                        batches: Callable[[], Iterable[tuple[torch.Tensor, ...]]], *, int8: bool = False,
                        log: Callable[[str], Any] = print) -> dict[str, Any]:
    """The examples' last step: export the best checkpoint, test it in PyTorch and ONNX Runtime (and with
    `int8` the int8 file as well); logs the summaries and returns the entries for results.json."""
    report = export_and_compare(checkpoint, onnx_path, batches)
    results: dict[str, Any] = dict(onnx=str(onnx_path), test_accuracy_torch=report.torch_accuracy,
                                   test_accuracy_onnx=report.onnx_accuracy, disagreements=report.disagreements,
                                   max_abs_logit_diff=report.max_abs_logit_diff)
    log(f"exported {onnx_path}")
    log(report.summary())
    if int8:
        q = int8_report(checkpoint, onnx_path, batches)
        results.update(test_accuracy_int8=q.int8_accuracy, int8_top1_agreement=q.top1_agreement,
                       int8_max_abs_logit_diff=q.max_abs_logit_diff, onnx_int8=q.int8_path)
        log(q.summary())
    return results
