"""FlurkaConfig: the model's whole description, validated, JSON round-trip (config.json)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..ops.feature_maps import DEFAULTS, FEATURE_MAPS

TASKS = ("classify", "mlm", "image")
ATTENTION_KINDS: tuple[str, ...] = (
    "softmax",
    "linformer",
    *(f"kernel-{f}" for f in FEATURE_MAPS),
    *(f"flurka-{f}" for f in FEATURE_MAPS),
)


def feature_map_of(attention: str) -> str | None:
    """'flurka-elu' -> 'elu'; None for softmax and linformer."""
    return attention.split("-", 1)[1] if "-" in attention else None


def is_low_rank(attention: str) -> bool:
    """Kinds that shorten keys/values with E_K, E_V (step 1)."""
    return attention == "linformer" or attention.startswith("flurka-")


def uses_flurka_op(attention: str) -> bool:
    return feature_map_of(attention) is not None


@dataclasses.dataclass
class FlurkaConfig:
    task: str = "classify"
    attention: str = "flurka-elu"
    num_layers: int = 2
    hidden_size: int = 128
    num_heads: int = 4
    low_rank: int = 32
    max_seq_len: int = 256
    num_features: int = 32  # P, the random features of rfa and favor (phi has M = phi_dim(...) entries)
    vocab_size: int = 1000
    num_labels: int = 2
    intermediate_size: int | None = None  # default 4 * hidden_size
    stabilizer: float = DEFAULTS["stabilizer"]
    eps: float = DEFAULTS["eps"]
    nu: int = DEFAULTS["nu"]  # type: ignore[assignment]  # dpfp: roll offsets 1..nu (M = 2 d nu)
    dropout: float = 0.0
    layer_norm_eps: float = 1e-12
    image_size: int = 32
    patch_size: int = 4
    num_channels: int = 3
    seed: int = 0  # random features and E_K/E_V are drawn from this seed

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def ffn_size(self) -> int:
        return self.intermediate_size or 4 * self.hidden_size

    @property
    def feature_map(self) -> str | None:
        return feature_map_of(self.attention)

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def seq_len_range(self) -> tuple[int, int]:
        """Smallest and largest sequence length the model accepts."""
        if self.task == "image":
            return self.num_patches + 1, self.num_patches + 1
        return 1, self.max_seq_len

    def validate(self) -> None:
        def bad(msg: str) -> ValueError:
            return ValueError(f"invalid FlurkaConfig: {msg}")

        if self.task not in TASKS:
            raise bad(f"unknown task {self.task!r}; allowed: {', '.join(TASKS)}")
        if self.attention not in ATTENTION_KINDS:
            raise bad(f"unknown attention {self.attention!r}; allowed: {', '.join(ATTENTION_KINDS)}")
        for name in ("num_layers", "hidden_size", "num_heads", "low_rank", "max_seq_len", "num_features",
                     "nu", "vocab_size", "num_labels", "image_size", "patch_size", "num_channels"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad(f"{name} must be a positive integer, got {v!r}")
        if self.hidden_size % self.num_heads:
            raise bad(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
        if self.low_rank > self.max_seq_len:
            raise bad(f"low_rank={self.low_rank} exceeds max_seq_len={self.max_seq_len}")
        if self.task == "image":
            if self.image_size % self.patch_size:
                raise bad(f"image_size={self.image_size} is not divisible by patch_size={self.patch_size}")
            if self.num_patches + 1 > self.max_seq_len:
                raise bad(f"{self.num_patches} patches + CLS exceed max_seq_len={self.max_seq_len}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlurkaConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"invalid FlurkaConfig: unknown fields {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> FlurkaConfig:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> FlurkaConfig:
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, dict[str, Any]] = {
    # Small enough for CPU tests and the README demo.
    "tiny": dict(num_layers=2, hidden_size=64, num_heads=2, low_rank=16, max_seq_len=128, num_features=16,
                 vocab_size=512, image_size=16, patch_size=4),
    "small": dict(num_layers=4, hidden_size=256, num_heads=4, low_rank=64, max_seq_len=1024, num_features=64,
                  vocab_size=8192),
    # BERT-base sized, as in the paper's experiments.
    "base": dict(num_layers=12, hidden_size=768, num_heads=12, low_rank=256, max_seq_len=4096, num_features=64,
                 vocab_size=30522),
}
