"""Where `generate` gets a model: a checkpoint directory (PyTorch, or ONNX Runtime after an export to a
temporary file) or an export, one .onnx or a directory of them (ONNX Runtime), with its config, special tokens and tokenizer."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from ..models import FlurkaConfig
from .options import GenerationConfig, GenerationError
from .tokenizer import read_tokenizer_text

RUNTIMES = ("torch", "ort")


@dataclasses.dataclass
class ModelSource:
    path: Path
    config: FlurkaConfig
    generation: GenerationConfig
    tokenizer_text: str | None
    is_onnx: bool


def open_source(path: str | os.PathLike) -> ModelSource:
    """Read what generation needs from a checkpoint directory, an exported .onnx or an exported directory
    (seq2seq: its files carry the same metadata); refuse a model that
    does not generate in one line."""
    from ..models import load_config
    from ..models.exported import ExportedModel
    from ..onnx_io import META_GENERATION, META_TOKENIZER

    path = Path(path)
    if not path.exists():
        raise GenerationError(f"{path} does not exist; give a checkpoint directory, an exported .onnx or a seq2seq "
                              f"export directory")
    exported_dir = path.is_dir() and not (path / "config.json").is_file() and any(path.glob("*.onnx"))
    if path.is_dir() and not exported_dir:
        config = load_config(path)
        source = ModelSource(path, config, GenerationConfig.read(path), read_tokenizer_text(path), False)
    else:
        exported = ExportedModel.read(min(path.glob("*.onnx")) if exported_dir else path)
        config = exported.require_config("generate needs the model's config")
        meta = exported.metadata
        gen = json.loads(meta[META_GENERATION]) if META_GENERATION in meta else {}
        source = ModelSource(path, config, GenerationConfig.from_dict(gen, str(path)), meta.get(META_TOKENIZER), True)
    check_generates(source.config, path)
    return source


def check_generates(config: FlurkaConfig, path: Any) -> None:
    if not config.spec.generates:
        raise GenerationError(f"{path} is a {config.task!r} model, which does not generate; generate needs a "
                              f"model that does (task lm)")
