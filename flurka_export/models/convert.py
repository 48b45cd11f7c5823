"""Up-training: turn a model of one attention kind into another, keeping every weight that still fits.

Q/K/V/O, embeddings, layer norms, feed-forward blocks and heads are shared by all attention kinds
(docs/op-spec.md section 1: only step 1 adds E_K/E_V for low-rank kinds and feature_proj for rfa/favor), so a
softmax-trained model can be converted to a FLuRKA kind and fine-tuned back to its accuracy
instead of training from scratch, as the FLuRKA paper's up-training does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from ..utils import check_output_dir
from .checkpoint import CHECKPOINT_FILES, COMPANION_FILES, copy_companions, load_pretrained, save_pretrained
from .config import ATTENTION_KINDS, FlurkaConfig
from .families import build_model


@dataclasses.dataclass
class ConversionReport:
    source: str
    target: str
    reused: list[str]  # copied unchanged from the source
    added: list[str]  # new in the target, freshly initialised (E_K, E_V, feature_proj)
    reinitialised: list[str]  # in both, but the shape changed (new low_rank / num_features): fresh values
    dropped: list[str]  # in the source only (e.g. E_K/E_V when converting to a kernel-* kind)

    def summary(self) -> str:
        lines = [f"converted attention {self.source} -> {self.target}: reused {len(self.reused)} tensors"]
        for label, names in (("added (initialised)", self.added), ("re-initialised (new shape)", self.reinitialised),
                             ("dropped", self.dropped)):
            lines.append(f"  {label}: {', '.join(names) if names else 'none'}")
        return "\n".join(lines)


def convert_attention(model: nn.Module, to: str, *, low_rank: int | None = None, num_features: int | None = None,
                      seed: int | None = None) -> tuple[nn.Module, ConversionReport]:
    """A new model with attention kind `to`: every tensor of `model` whose name and shape fit is copied;
    the rest is initialised as build_model would (E_K, E_V ~ N(0, 1/k^2); random features from `seed`)."""
    if to not in ATTENTION_KINDS:
        raise ValueError(f"unknown attention kind {to!r}; allowed: {', '.join(ATTENTION_KINDS)}")
    old: FlurkaConfig = model.config
    changes: dict[str, object] = {"attention": to}
    if low_rank is not None:
        changes["low_rank"] = low_rank
    if num_features is not None:
        changes["num_features"] = num_features
    if seed is not None:
        changes["seed"] = seed
    new_config = old.replace(**changes)
    new_config.validate()
    if new_config == old:
        raise ValueError(f"the model already has attention {to!r} with these settings; nothing to convert")
    new_model = build_model(new_config)
    src = model.state_dict()
    dst = new_model.state_dict()
    reused, added, reinit = [], [], []
    state: dict[str, torch.Tensor] = {}
    for name, t in dst.items():
        if name not in src:
            added.append(name)
        elif tuple(src[name].shape) != tuple(t.shape):
            reinit.append(name)
        else:
            state[name] = src[name].detach().clone().to(t.dtype)
            reused.append(name)
    dropped = sorted(set(src) - set(dst))
    new_model.load_state_dict(state, strict=False)
    report = ConversionReport(source=old.attention, target=to, reused=reused, added=added,
                              reinitialised=reinit, dropped=dropped)
    return new_model.eval(), report


def convert_checkpoint(source: str | Path, output: str | Path, to: str, *, low_rank: int | None = None,
                       num_features: int | None = None, seed: int | None = None,
                       overwrite: bool = False) -> ConversionReport:
    """convert_attention on checkpoint directories (config.json + model.safetensors)."""
    writes = CHECKPOINT_FILES + tuple(n for n in COMPANION_FILES if (Path(source) / n).is_file())
    check_output_dir(output, overwrite=overwrite, writes=writes, what="checkpoint directory")
    model = load_pretrained(source)
    new_model, report = convert_attention(model, to, low_rank=low_rank, num_features=num_features, seed=seed)
    save_pretrained(new_model, output, overwrite=overwrite)
    copy_companions(source, output, overwrite=True)  # the output was checked above; these are ours to write
    return report
