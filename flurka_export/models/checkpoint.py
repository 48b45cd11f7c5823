"""Checkpoints: a directory with config.json and model.safetensors. Nothing is unpickled."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..utils import atomic_path, check_output_dir
from .config import FlurkaConfig
from .families import build_model

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME)
# Files a checkpoint may carry beside its weights, which travel with it (conversion, export metadata).
COMPANION_FILES = ("generation_config.json", "tokenizer.json")


class CheckpointError(ValueError):
    pass


def save_pretrained(model: nn.Module, directory: str | Path, *, overwrite: bool = True) -> Path:
    """Write config.json and model.safetensors into `directory` atomically.

    Other files already in `directory` are kept; with `overwrite=False` a non-empty directory is refused.
    """
    config: FlurkaConfig = model.config
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    check_output_dir(directory, overwrite=overwrite, writes=CHECKPOINT_FILES, what="checkpoint directory")
    with atomic_path(directory, is_dir=True, overwrite=overwrite) as tmp:
        config.to_json(tmp / CONFIG_NAME)
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt", "producer": "flurka-export"})
    return Path(directory)


def load_config(directory: str | Path) -> FlurkaConfig:
    directory = Path(directory)
    if directory.is_file():
        raise CheckpointError(f"{directory} is a file; expected a checkpoint directory ({CONFIG_NAME} + {WEIGHTS_NAME}), "
                              f"e.g. {directory.parent}")
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist (expected {CONFIG_NAME} + {WEIGHTS_NAME})")
    if not (directory / CONFIG_NAME).is_file():
        raise CheckpointError(f"{directory} has no {CONFIG_NAME}; is it a flurka-export checkpoint?")
    return FlurkaConfig.from_json(directory / CONFIG_NAME)


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise CheckpointError naming every missing, unexpected or mis-shaped tensor."""
    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected)}")
    for name in sorted(set(expected) & set(state)):
        if tuple(expected[name].shape) != tuple(state[name].shape):
            problems.append(f"{name}: shape {tuple(state[name].shape)} in file, {tuple(expected[name].shape)} in config")
    if problems:
        raise CheckpointError(f"{source} does not match its config:\n  " + "\n  ".join(problems))


def load_pretrained(directory: str | Path) -> nn.Module:
    """Build the model from config.json and load model.safetensors into it (eval mode)."""
    directory = Path(directory)
    config = load_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_NAME}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {e}") from None
    model = build_model(config)
    check_state_dict(model, state, str(weights))
    model.load_state_dict(state)
    return model.eval()


def copy_companions(source: str | Path, output: str | Path, *, overwrite: bool = False) -> list[str]:
    """Copy generation_config.json and tokenizer.json (those present) from one checkpoint to another."""
    copied = []
    for name in COMPANION_FILES:
        src = Path(source) / name
        if src.is_file():
            with atomic_path(Path(output) / name, overwrite=overwrite) as tmp:
                tmp.write_bytes(src.read_bytes())
            copied.append(name)
    return copied
