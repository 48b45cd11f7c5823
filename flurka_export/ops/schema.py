"""The FlurkaAttention op's identity and attributes (docs/op-spec.md sections 2 to 4): read by the ONNX
node, the function bodies, the passes and, through tests, the TensorRT plugin's field table."""

from __future__ import annotations

from .feature_maps import OPTIONAL_ATTRIBUTES, OpAttribute

OP_DOMAIN = "com.flurka"
OP_NAME = "FlurkaAttention"
OP_VERSION = 1
# The TensorRT plugin is FlurkaAttention, version str(OP_VERSION), in this namespace (plugins/flurka_attention).
PLUGIN_NAMESPACE = "com.flurka"
# The torch custom op (torch.ops.flurka.attention); the kernels package registers its CUDA implementation.
TORCH_OP = "flurka::attention"

# Every attribute, in the plugin's field order: the two required ones, then the feature maps' optional ones.
ATTRIBUTES: tuple[OpAttribute, ...] = (
    OpAttribute("num_heads", "int", None, minimum=1),
    OpAttribute("feature_map", "string", None),
    *OPTIONAL_ATTRIBUTES,
)
