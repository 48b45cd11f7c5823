"""FLuRKA models in PyTorch: config, attention kinds, families, checkpoints."""

from .. import kernels as _kernels  # noqa: F401  (registers the fused CUDA kernel of torch.ops.flurka.attention)
from . import specs  # noqa: F401  (the family specs, one module per family)
from .attention import FlurkaSelfAttention, SequenceTooLongError
from .checkpoint import CheckpointError, load_config, load_pretrained, save_pretrained
from .config import (
    ATTENTION_KINDS,
    PRESETS,
    TASKS,
    FlurkaConfig,
    feature_map_of,
    is_low_rank,
    output_name,
    uses_flurka_op,
)
from .config_rules import ConfigError
from .families import build_model

__all__ = [
    "ATTENTION_KINDS", "PRESETS", "TASKS", "CheckpointError", "ConfigError", "FlurkaConfig", "FlurkaSelfAttention",
    "SequenceTooLongError", "build_model", "feature_map_of", "is_low_rank", "load_config", "load_pretrained",
    "output_name", "save_pretrained", "uses_flurka_op",
]
