"""fp32 and int8 side by side on a test set: accuracy of each, top-1 agreement of int8 with fp32 PyTorch,
logit error. The int8 file is what `flurka-export optimize --quantize int8` writes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from .predict import onnx_predict, torch_predict


@dataclasses.dataclass
class Int8Report:
    examples: int
    fp32_accuracy: float  # PyTorch fp32
    int8_accuracy: float  # ONNX Runtime, int8 weights
    top1_agreement: float  # int8 argmax == fp32 PyTorch argmax
    max_abs_logit_diff: float
    int8_path: str
    quantization: str

    def summary(self) -> str:
        from ..parity.agreement import MIN_TOP1_AGREEMENT

        goal = "meets" if self.top1_agreement >= MIN_TOP1_AGREEMENT else "BELOW"
        return (f"test accuracy  fp32 {self.fp32_accuracy:.4f}  int8 {self.int8_accuracy:.4f} "
                f"({(self.int8_accuracy - self.fp32_accuracy) * 100:+.2f} points); top-1 agreement "
                f"{self.top1_agreement:.4f} over {self.examples} examples ({goal} the {MIN_TOP1_AGREEMENT:.0%} goal); "
                f"max |logit diff| "
                f"{self.max_abs_logit_diff:.2e} ({self.quantization}, {self.int8_path})")


def int8_report(checkpoint: str | Path, onnx_path: str | Path,
                batches: Callable[[], Iterable[tuple[torch.Tensor, ...]]],
                calibration_data: str | Path | None = None) -> Int8Report:
    """Quantize the exported fp32 `onnx_path` (fusions + int8, beside it as *.int8.onnx) and compare."""
    from ..models import load_pretrained
    from ..optimize.pipeline import optimize_file

    onnx_path = Path(onnx_path)
    int8_path = onnx_path.with_name(onnx_path.stem + ".int8.onnx")
    summary = optimize_file(str(onnx_path), str(int8_path), quantize="int8", overwrite=True,
                            calibration_data=None if calibration_data is None else str(calibration_data))
    fp32, labels = torch_predict(load_pretrained(checkpoint), batches())
    int8 = onnx_predict(int8_path, batches())
    return Int8Report(
        examples=len(labels),
        fp32_accuracy=float((fp32.argmax(-1) == labels).mean()),
        int8_accuracy=float((int8.argmax(-1) == labels).mean()),
        top1_agreement=float((fp32.argmax(-1) == int8.argmax(-1)).mean()),
        max_abs_logit_diff=float(np.abs(fp32 - int8).max()) if len(labels) else 0.0,
        int8_path=str(int8_path),
        quantization=summary["quantization"],
    )
