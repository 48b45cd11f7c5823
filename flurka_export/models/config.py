"""FlurkaConfig: the model's whole description, validated, JSON round-trip (config.json)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..ops.feature_maps import DEFAULTS, FEATURE_MAPS
from .config_rules import ACTIVATION_ALIASES, ConfigError, check_field, field_rules

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


def causal_attention_error(attention: str) -> str | None:
    """Why `attention` cannot be causal (None when it can): causal self-attention is softmax or kernel-<map>
    with a causal feature map (docs/op-spec.md, "Causal kernel attention")."""
    from ..ops.causal import CAUSAL_FEATURE_MAPS

    allowed = "softmax, " + ", ".join(f"kernel-{m}" for m in CAUSAL_FEATURE_MAPS)
    if is_low_rank(attention):
        return (f"attention {attention!r} cannot be causal: its low-rank step (E_K, E_V) mixes all N positions, "
                f"so a token would see the future; causal kinds: {allowed}")
    fmap = feature_map_of(attention)
    if fmap is not None and fmap not in CAUSAL_FEATURE_MAPS:
        better = f" (use kernel-{fmap}-causal)" if f"{fmap}-causal" in CAUSAL_FEATURE_MAPS else ""
        return (f"attention {attention!r} cannot be causal: feature map {fmap!r} reads all keys for its key-side "
                f"constant, so a token would see the future{better}; causal kinds: {allowed}")
    return None


# The family registry (models/specs/) hands its two lookups to this module when it is imported (models/__init__
# imports it first): the specs build on FlurkaConfig, so this module never imports them back.
_FAMILIES: dict[str, Any] = {}


def register_families(spec_of: Any, task_names: Any) -> None:
    """Called once by models/specs/__init__.py: how a task name finds its FamilySpec, and every task name."""
    _FAMILIES.update(spec_of=spec_of, task_names=task_names)


def spec_of(task: str) -> Any:
    return _FAMILIES["spec_of"](task)


def task_names() -> tuple[str, ...]:
    return _FAMILIES["task_names"]()


def default_attention(task: str) -> str:
    """The kind `new` gives a task when none is named (its family spec's default_attention)."""
    return spec_of(task).default_attention


def uses_flurka_op(attention: str) -> bool:
    return feature_map_of(attention) is not None


def output_name(task: str) -> str:
    """Name of the model's (first) output in ONNX and in parity reports; the family spec declares it."""
    return spec_of(task).heads[task].output


def __getattr__(name: str) -> Any:
    # TASKS: every config.task of the registered families (models/specs/), read when asked for.
    if name == "TASKS":
        return task_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    # What real checkpoints (Hugging Face BERT/RoBERTa/ViT, the authors' Flax BERT) need. The defaults
    # keep checkpoints written before these fields existed valid and unchanged.
    type_vocab_size: int = 0  # > 0: token type embeddings and an optional token_type_ids input
    hidden_act: str = "gelu"  # feed-forward activation: gelu (exact), gelu_tanh, relu, silu
    mlm_act: str | None = None  # activation of the MLM head transform (None: hidden_act; RoBERTa: gelu)
    pre_norm: bool | None = None  # None: the family's default (text: post-LN as BERT; image: pre-LN as ViT)
    position_offset: int = 0  # learned positions start at this row (RoBERTa: padding_idx + 1 = 2)
    pooler: bool = True  # classify: dense + tanh on the first token before the classifier
    tie_word_embeddings: bool = False  # mlm: the decoder reuses the word embedding matrix
    mlm_transform: bool = True  # mlm: dense + activation + LayerNorm before the decoder
    mask_keys_in_attention: bool = True  # False ignores the padding mask inside attention (the authors' code)
    # seq2seq (encoder-decoder): the encoder uses `attention`; the decoder's causal self-attention and its
    # cross-attention over the encoder output have their own kinds. None: the family's default.
    decoder_attention: str | None = None  # causal: softmax or kernel-<causal map> (default kernel-elu)
    cross_attention: str | None = None  # any kind, FLuRKA included (default: `attention`)
    num_decoder_layers: int | None = None  # default num_layers
    max_target_len: int | None = None  # decoder positions (default max_seq_len)

    def __post_init__(self) -> None:
        if isinstance(self.hidden_act, str):
            self.hidden_act = ACTIVATION_ALIASES.get(self.hidden_act, self.hidden_act)
        if isinstance(self.mlm_act, str):
            self.mlm_act = ACTIVATION_ALIASES.get(self.mlm_act, self.mlm_act)
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
    def spec(self) -> Any:
        """The FamilySpec of this config's task (models/specs/)."""
        return spec_of(self.task)

    @property
    def seq_len_range(self) -> tuple[int, int]:
        """Smallest and largest sequence length the model accepts."""
        return self.spec.seq_len_range(self)

    @property
    def uses_pre_norm(self) -> bool:
        return self.spec.pre_norm_default() if self.pre_norm is None else self.pre_norm

    def validate(self) -> None:
        """Every field's type and range, then the relations between fields; ConfigError (one line) if not."""

        def bad(msg: str) -> ConfigError:
            return ConfigError(f"invalid FlurkaConfig: {msg}")

        for name, rule in field_rules(task_names(), ATTENTION_KINDS).items():
            setattr(self, name, check_field(name, getattr(self, name), rule))
        if self.hidden_size % self.num_heads:
            raise bad(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
        if self.low_rank > self.max_seq_len:
            raise bad(f"low_rank={self.low_rank} exceeds max_seq_len={self.max_seq_len}")
        why = self.spec.validate(self)
        if why:
            raise bad(why)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlurkaConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"invalid FlurkaConfig: unknown field {unknown[0]!r}"
                              f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}; "
                              f"known fields: {', '.join(sorted(known))}")
        return cls(**data)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> FlurkaConfig:
        """Read config.json; any problem is one ConfigError line that names the file (and the field)."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON: {e}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path} cannot be read: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object of FlurkaConfig fields, not {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {str(e).removeprefix('invalid FlurkaConfig: ')}") from None

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
