"""What a feature map declares (docs/op-spec.md section 5): one `FeatureMap` per module in this package.

Every backend is generated from, or tested against, these declarations: the PyTorch reference (phi,
den), the ONNX function body, the fusion pattern, the Triton kernels' FMAP constexpr, the C
launcher's enum and checks, and the TensorRT plugin's fields and defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch


@dataclasses.dataclass(frozen=True)
class OpAttribute:
    """An attribute of com.flurka::FlurkaAttention (ONNX type "int", "float" or "string")."""

    name: str
    type: str
    default: int | float | str | None  # None: required
    minimum: int | None = None  # ints only: smallest allowed value
    c_type: str = ""  # member type in the C launcher's parameter struct ("" = not a member)

    def check(self, value: Any) -> None:
        """Raise ValueError naming the attribute when `value` is not allowed."""
        if self.type == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{self.name} must be an int, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"{self.name} must be an int >= {self.minimum}, got {value}")
        elif self.type == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{self.name} must be a float, got {value!r}")


# The optional attributes, each declared once; a feature map lists the ones it reads.
STABILIZER = OpAttribute("stabilizer", "float", 1e-3, c_type="float")
EPS = OpAttribute("eps", "float", 1e-6, c_type="float")
NU = OpAttribute("nu", "int", 1, minimum=1, c_type="int")
OPTIONAL_ATTRIBUTES: tuple[OpAttribute, ...] = (STABILIZER, EPS, NU)
DEFAULTS: dict[str, int | float] = {a.name: a.default for a in OPTIONAL_ATTRIBUTES}  # type: ignore[misc]


@dataclasses.dataclass(frozen=True)
class FusePattern:
    """The decomposed form of phi and den, as `export --attention-op decomposed` emits it.

    `phi(op, x, v, w_t, is_query)` and `den(op, t, v)` build onnxscript pattern nodes from the
    pattern variables `v` (named in `variables`); `check(v, read, num_heads, head_dim)` reads their
    constants through `read` (passes.fuse_flurka_attention.ConstantReader) and returns the node's
    attributes plus the feature_proj it implies, or a string saying why the match is refused.
    """

    variables: tuple[str, ...]
    phi: Callable[..., Any]
    den: Callable[..., Any]
    check: Callable[..., tuple[dict[str, Any], Any] | str]


@dataclasses.dataclass(frozen=True)
class FeatureMap:
    name: str
    enum_id: int  # flurka_feature_map_t in C, the FMAP constexpr of the Triton kernels
    summary: str
    attributes: tuple[OpAttribute, ...]  # the optional attributes it reads
    needs_feature_proj: bool  # input 3, feature_proj [H, P, d]
    m_formula: str  # M as written in docs/op-spec.md
    phi_dim: Callable[[int, int, Mapping[str, Any]], int]  # M(d, P, attributes)
    phi: Callable[[torch.Tensor, torch.Tensor | None, Mapping[str, Any], bool], torch.Tensor]
    den: Callable[[torch.Tensor, Mapping[str, Any]], torch.Tensor]
    onnx_body: Callable[[Any], tuple[Any, tuple[Any, ...]]]  # BodyLibrary -> (body, its helper functions)
    fuse: FusePattern
    # The kernels' ABI: the integer they get as P, and the feature columns kv_state tiles over; each as a
    # Python function of (d, P, attributes) and as a C expression over `p` (flurka_attention_params_t*).
    kernel_p: Callable[[int, int, Mapping[str, Any]], int]
    kernel_columns: Callable[[int, int, Mapping[str, Any]], int]
    c_phi_dim: str
    c_kernel_p: str
    c_kernel_columns: str
    constants: Mapping[str, float] = dataclasses.field(default_factory=dict)
    random_features: str | None = None  # how models draw feature_proj ("gaussian", "orthogonal")
    # phi of one key reads that key only, so causal kernel attention (ops.causal) may use the map; favor's
    # key-side c is a max over the whole key block (it sees the future): its causal form is favor-causal.
    causal: bool = True

    def attribute_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The attributes this map reads, from `values` (defaults filled in), validated."""
        out = {}
        for a in self.attributes:
            v = values.get(a.name, a.default)
            a.check(v)
            out[a.name] = v
        return out
