"""Tiny exported models shared by the optimize/quantize/tool tests (exported once per test process)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import onnx
import torch

from flurka_export import export_onnx
from flurka_export.models import build_model
from tests.helpers import tiny_config


@functools.cache
def tiny_onnx(attention: str = "flurka-elu", dtype: str = "fp32") -> Path:
    """Path of a tiny 2-layer text classifier; tests must copy it before changing it."""
    path = Path(tempfile.mkdtemp(prefix="flurka-opt-test-")) / f"{attention}-{dtype}.onnx"
    torch.manual_seed(0)  # the same weights whichever test runs first
    return export_onnx(build_model(tiny_config(attention=attention)), path, dtype=dtype)


def load(attention: str = "flurka-elu", dtype: str = "fp32") -> onnx.ModelProto:
    return onnx.load(str(tiny_onnx(attention, dtype)))
