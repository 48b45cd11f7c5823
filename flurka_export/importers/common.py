"""What every importer shares: a pool of source tensors that records where each one went, the report,
and the final check that the model got exactly what it needs."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import torch
from torch import nn

from ..models.config import FlurkaConfig


class UnmappedParametersWarning(UserWarning):
    pass


@dataclasses.dataclass
class ImportReport:
    config: FlurkaConfig
    source: str  # "flax" or "hf"
    mapped: list[tuple[str, str]]  # (source name, our state_dict name)
    dropped: list[tuple[str, str]]  # (source name, why it is not part of our model): by choice, never silent
    unmapped: list[str]  # source names with no place in our model: an error unless allowed
    notes: list[str]  # choices made, each in one sentence

    def summary(self) -> str:
        c = self.config
        lines = [f"imported {len({s for s, _ in self.mapped})} {self.source} tensors as task={c.task} "
                 f"attention={c.attention} layers={c.num_layers} hidden={c.hidden_size} heads={c.num_heads} "
                 f"k={c.low_rank} N_max={c.max_seq_len}"]
        lines += [f"  note: {n}" for n in self.notes]
        reasons: dict[str, list[str]] = {}
        for name, why in self.dropped:  # one line per reason: a 12-layer model drops 24 tensors for one reason
            reasons.setdefault(why, []).append(name)
        lines += [f"  dropped ({why}): {', '.join(names)}" for why, names in reasons.items()]
        if self.unmapped:
            lines.append(f"  unmapped (not imported): {', '.join(self.unmapped)}")
        return "\n".join(lines)


class TensorPool:
    """Source tensors by name. `take` consumes one into our state dict, `drop` consumes one with a reason;
    whatever is left at the end has no place in our model and is reported by name."""

    def __init__(self, tensors: dict[str, np.ndarray], error: type[ValueError]) -> None:
        self.left = dict(tensors)
        self.error = error
        self.state: dict[str, torch.Tensor] = {}
        self.mapped: list[tuple[str, str]] = []
        self.dropped: list[tuple[str, str]] = []

    def has(self, name: str) -> bool:
        return name in self.left

    def peek(self, name: str) -> np.ndarray:
        if name not in self.left:
            raise self.error(f"the checkpoint has no tensor {name}")
        return np.asarray(self.left[name])

    def take(self, name: str) -> np.ndarray:
        arr = self.peek(name)
        del self.left[name]
        return np.asarray(arr, dtype=np.float32)

    def drop(self, name: str, why: str) -> None:
        self.peek(name)
        del self.left[name]
        self.dropped.append((name, why))

    def put(self, ours: str, arr: np.ndarray | torch.Tensor, *sources: str) -> None:
        t = arr if isinstance(arr, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        self.state[ours] = t.to(torch.float32)
        self.mapped.extend((s, ours) for s in sources)

    def copy(self, source: str, ours: str, transpose: bool = False) -> None:
        arr = self.take(source)
        self.put(ours, arr.T if transpose else arr, source)


def finish(model: nn.Module, pool: TensorPool, *, what: str, allow_unmapped: bool,
           error: type[ValueError]) -> list[str]:
    """Load pool.state into the model after checking that nothing is missing or mis-shaped; return the
    names left unmapped (an error naming them all unless allow_unmapped, then a warning)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(pool.state))
    if missing:
        raise error(f"the checkpoint has nothing for: {', '.join(missing)}")
    for name, t in pool.state.items():
        if name not in expected:
            raise error(f"internal mapping error: {name} is not a tensor of our model")
        if tuple(t.shape) != tuple(expected[name].shape):
            raise error(f"{name}: shape {tuple(t.shape)} from the checkpoint, {tuple(expected[name].shape)} expected")
    unmapped = sorted(pool.left)
    if unmapped:
        msg = f"{len(unmapped)} tensors have no place in {what}: {', '.join(unmapped)}"
        if not allow_unmapped:
            raise error(msg + " (pass --allow-unmapped to import anyway)")
        warnings.warn(msg, UnmappedParametersWarning, stacklevel=3)
    model.load_state_dict(pool.state)
    return unmapped
