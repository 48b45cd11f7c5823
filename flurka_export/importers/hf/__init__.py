"""Import a Hugging Face transformers checkpoint (a `save_pretrained` directory) into a flurka-export one.

Read here without transformers: config.json and model.safetensors (or its sharded index). Pickled
weights (pytorch_model.bin) are refused: we never unpickle. One module per source architecture
(bert.py, roberta.py, vit.py; what they share is in common.py), each declaring ARCHITECTURES: a module of
this package is registered by being here. All map onto our families with attention kind `softmax`, which
computes what BERT/RoBERTa/ViT self-attention computes; `convert-attention --to flurka-elu` then starts
the paper's up-training from it:

    BertModel (task encoder), BertForSequenceClassification, RobertaForSequenceClassification (classify),
    BertForMaskedLM, BertForPreTraining, RobertaForMaskedLM (mlm), ViTForImageClassification (image),
    GPT2LMHeadModel, GPT2Model (lm: causal LM, with generation_config.json and any tokenizer.json).

Every tensor is mapped, or dropped by name with the reason (BertModel's pooler, the pre-training
next-sentence head), or named as an error.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ...models.config import FlurkaConfig
from ...models.families import build_model
from ..common import ImportReport, TensorPool, finish
from .common import ACTIVATIONS, BUFFERS, Architecture, HFImportError, common_fields, read_hf_dir

ARCHITECTURES: dict[str, Architecture] = {
    name: arch for m in pkgutil.iter_modules(__path__) if m.name != "common"
    for name, arch in importlib.import_module(f"{__name__}.{m.name}").ARCHITECTURES.items()}


def architecture_of(hf: dict[str, Any], source: str) -> tuple[str, Architecture]:
    names = hf.get("architectures") or []
    supported = ", ".join(ARCHITECTURES)
    if len(names) != 1 or names[0] not in ARCHITECTURES:
        raise HFImportError(f"{source}: architectures {names} is not supported; supported: {supported}")
    arch = ARCHITECTURES[names[0]]
    if hf.get("model_type") != arch.model_type:
        raise HFImportError(f"{source}: model_type {hf.get('model_type')!r} does not match {names[0]}")
    for key, ok in (("is_decoder", False), ("add_cross_attention", False), ("position_embedding_type", "absolute")):
        if hf.get(key, ok) != ok:
            raise HFImportError(f"{source}: {key}={hf[key]!r} is not supported (only {key}={ok!r})")
    return names[0], arch


def hf_config_fields(hf: dict[str, Any], arch: Architecture, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    """FlurkaConfig fields for the HF config (shapes from the tensors where config.json may be silent)."""
    fields: dict[str, Any] = dict(task=arch.task, **(common_fields(hf) if arch.bert_like else {}))
    fields.update(arch.fields(hf, tensors))
    fields["low_rank"] = min(FlurkaConfig.low_rank, fields["max_seq_len"])  # unused by softmax; see convert-attention
    return fields


def import_hf_model(hf: dict[str, Any], tensors: dict[str, np.ndarray], *, source: str = "config.json",
                    allow_unmapped: bool = False) -> tuple[nn.Module, ImportReport]:
    """Our model (attention softmax) with every tensor of a transformers checkpoint in its place."""
    name, arch = architecture_of(hf, source)
    try:
        fields = hf_config_fields(hf, arch, tensors)
    except KeyError as e:
        raise HFImportError(f"{source} has no {e.args[0]!r}, which {name} needs") from None
    except (TypeError, ValueError) as e:
        raise HFImportError(f"{source}: a value has the wrong type ({e})") from None
    config = FlurkaConfig(**fields)
    model = build_model(config)
    pool = TensorPool(tensors, HFImportError)
    notes = [f"{name} -> task {config.task}; attention softmax (exactly what its self-attention computes)"]
    arch.map_tensors(pool, config, notes)
    if config.position_offset:
        notes.append(f"positions start at row {config.position_offset} (RoBERTa: padding_idx + 1); "
                     f"N_max = {config.max_seq_len}")
    unmapped = finish(model, pool, what=f"a {config.task} model", allow_unmapped=allow_unmapped, error=HFImportError)
    report = ImportReport(config=config, source="hf", mapped=pool.mapped, dropped=pool.dropped,
                          unmapped=unmapped, notes=notes)
    return model.eval(), report


def import_hf_checkpoint(directory: str | Path, output: str | Path | None = None, *,
                         allow_unmapped: bool = False) -> tuple[nn.Module, ImportReport]:
    """Read a save_pretrained directory, map it, and save_pretrained our checkpoint to `output` when given."""
    from ...models import save_pretrained

    hf, tensors = read_hf_dir(directory)
    model, report = import_hf_model(hf, tensors, source=str(Path(directory) / "config.json"),
                                    allow_unmapped=allow_unmapped)
    if output is not None:
        save_pretrained(model, output)
        _write_generation_files(hf, Path(directory), Path(output), report)
    return model, report


def _write_generation_files(hf: dict[str, Any], source: Path, output: Path, report: ImportReport) -> None:
    """A generating model's special tokens (generation_config.json) and, when the directory has one, its
    tokenizer.json: `generate` and the export read them from the checkpoint."""
    import json

    from ...utils import atomic_path

    _, arch = architecture_of(hf, str(source / "config.json"))
    if arch.generation is None:
        return
    gen = {k: v for k, v in arch.generation(hf).items() if v is not None}
    with atomic_path(output / "generation_config.json") as tmp:
        tmp.write_text(json.dumps(gen, indent=2, sort_keys=True) + "\n")
    report.notes.append(f"generation_config.json: {', '.join(f'{k}={v}' for k, v in sorted(gen.items()))}")
    if (source / "tokenizer.json").is_file():
        with atomic_path(output / "tokenizer.json") as tmp:
            tmp.write_bytes((source / "tokenizer.json").read_bytes())
        report.notes.append("tokenizer.json copied beside the weights")


__all__ = ["ACTIVATIONS", "ARCHITECTURES", "BUFFERS", "Architecture", "HFImportError", "architecture_of",
           "hf_config_fields", "import_hf_checkpoint", "import_hf_model", "read_hf_dir"]
