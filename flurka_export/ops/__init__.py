"""The FlurkaAttention op: feature-map registry, reference math, torch custom op, ONNX bodies."""

from .export_mode import ATTENTION_OPS, current_export_mode, export_mode
from .feature_maps import FEATURE_MAPS, NEEDS_FEATURE_PROJ, REGISTRY, denominator, phi, phi_dim
from .op import OP_DOMAIN, OP_NAME, OP_VERSION, flurka_attention
from .reference import flurka_attention_reference, validate_inputs

__all__ = [
    "ATTENTION_OPS", "FEATURE_MAPS", "NEEDS_FEATURE_PROJ", "OP_DOMAIN", "OP_NAME", "OP_VERSION", "REGISTRY",
    "current_export_mode", "denominator", "export_mode", "flurka_attention", "flurka_attention_reference",
    "phi", "phi_dim", "validate_inputs",
]
