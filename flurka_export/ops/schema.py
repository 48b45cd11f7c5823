"""The FlurkaAttention op's interface (SPEC section 2): one source of truth for the ONNX node, the
function bodies, the passes and the TensorRT plugin fields (checked against the C++ side in tests)."""

from __future__ import annotations

import dataclasses

OP_DOMAIN = "com.flurka"
OP_NAME = "FlurkaAttention"
OP_VERSION = 1
# The TensorRT plugin is FlurkaAttention, version str(OP_VERSION), in this namespace (plugins/flurka_attention).
PLUGIN_NAMESPACE = "com.flurka"
INPUTS: tuple[str, ...] = ("query", "key", "value", "feature_proj")
NUM_REQUIRED_INPUTS = 3
OUTPUTS: tuple[str, ...] = ("output",)


@dataclasses.dataclass(frozen=True)
class Attribute:
    name: str
    type: str  # ONNX attribute type: "int", "float", "string"
    default: int | float | str | None  # None: required
    used_by: tuple[str, ...] = ()  # feature maps that read it; () = all


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("num_heads", "int", None),
    Attribute("feature_map", "string", None),
    Attribute("stabilizer", "float", 1e-3, ("relu",)),
    Attribute("eps", "float", 1e-6, ("elu",)),
)
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES)
DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")
