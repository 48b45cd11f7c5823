"""Causal kernel attention (docs/op-spec.md, "Causal kernel attention"): the op decoders use, its three
forms (naive, chunked, recurrent) and the placeholder core node that passes.causal_core lowers to
LinearAttention."""

from .attention import (
    CAUSAL_FEATURE_MAPS,
    CORE_DOMAIN,
    CORE_NAME,
    CORE_VERSION,
    causal_kernel_attention,
    causal_state_shape,
    check_causal,
)
from .forms import FORMS

__all__ = [
    "CAUSAL_FEATURE_MAPS", "CORE_DOMAIN", "CORE_NAME", "CORE_VERSION", "FORMS", "causal_kernel_attention",
    "causal_state_shape", "check_causal",
]
