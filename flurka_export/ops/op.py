"""`torch.ops.flurka.attention`: the FlurkaAttention op as a torch custom op.

The reference runs on every device; importing `flurka_export.kernels` (flurka_export.models does)
registers the fused Triton kernel as its CUDA implementation. Autograd recomputes the reference.
During ONNX export the public wrapper emits the com.flurka node instead.
"""

from __future__ import annotations

import torch

from .export_mode import current_export_mode
from .feature_maps import DEFAULTS, get
from .reference import flurka_attention_reference, validate_inputs
from .schema import OP_DOMAIN, OP_NAME, OP_VERSION, TORCH_OP


@torch.library.custom_op(TORCH_OP, mutates_args=())
def _attention_op(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    feature_proj: torch.Tensor | None,
    num_heads: int,
    feature_map: str,
    stabilizer: float,
    eps: float,
    nu: int = 1,  # a default, so calls written before dpfp keep working
) -> torch.Tensor:
    return flurka_attention_reference(query, key, value, feature_proj, num_heads=num_heads, feature_map=feature_map,
                                      stabilizer=stabilizer, eps=eps, nu=nu)


@_attention_op.register_fake
def _attention_fake(query, key, value, feature_proj, num_heads, feature_map, stabilizer, eps, nu):  # noqa: ANN001
    return query.new_empty((query.shape[0], query.shape[1], value.shape[-1]))


def _setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
    query, key, value, feature_proj, *attrs = inputs
    ctx.save_for_backward(query, key, value, feature_proj)
    ctx.attrs = tuple(attrs)


def _backward(ctx, grad_out):  # noqa: ANN001
    # Recompute the reference under autograd: exact gradients, no second implementation to keep in sync.
    query, key, value, feature_proj = ctx.saved_tensors
    num_heads, feature_map, stabilizer, eps, nu = ctx.attrs
    wanted = [query, key, value] + ([feature_proj] if feature_proj is not None else [])
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(True) for t in wanted]
        proj = leaves[3] if feature_proj is not None else None
        out = flurka_attention_reference(
            leaves[0], leaves[1], leaves[2], proj,
            num_heads=num_heads, feature_map=feature_map, stabilizer=stabilizer, eps=eps, nu=nu,
        )
        grads = torch.autograd.grad(out, leaves, grad_out, allow_unused=True)
    grads = list(grads) + [None] * (4 - len(grads))
    return (*grads, *([None] * len(ctx.attrs)))


_attention_op.register_autograd(_backward, setup_context=_setup_context)


def _symbolic_node(query, key, value, feature_proj, num_heads, feature_map, attrs):  # noqa: ANN001
    """The com.flurka node, with exactly the attributes its feature map reads."""
    node_attrs: dict[str, object] = {"num_heads": num_heads, "feature_map": feature_map, **attrs}
    inputs = [query, key, value] + ([feature_proj] if feature_proj is not None else [])
    return torch.onnx.ops.symbolic(
        f"{OP_DOMAIN}::{OP_NAME}",
        inputs,
        node_attrs,
        dtype=query.dtype,
        shape=(query.shape[0], query.shape[1], value.shape[2]),
        version=OP_VERSION,
    )


def flurka_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    feature_proj: torch.Tensor | None = None,
    *,
    num_heads: int,
    feature_map: str,
    stabilizer: float = DEFAULTS["stabilizer"],
    eps: float = DEFAULTS["eps"],
    nu: int = DEFAULTS["nu"],  # type: ignore[assignment]
) -> torch.Tensor:
    """FlurkaAttention (docs/op-spec.md section 2): query [B, Nq, H*d], key [B, Nk, H*d], value [B, Nk, H*dv],
    feature_proj [H, P, d] (maps with random features) -> [B, Nq, H*dv]; stabilizer, eps and nu as the
    feature map reads them (docs/op-spec.md sections 3 and 5)."""
    values = {"stabilizer": float(stabilizer), "eps": float(eps), "nu": nu}
    attrs = get(feature_map).attribute_values(values)
    if torch.onnx.is_in_onnx_export():
        if current_export_mode() == "custom":
            return _symbolic_node(query, key, value, feature_proj, num_heads, feature_map, attrs)
        return flurka_attention_reference(query, key, value, feature_proj, num_heads=num_heads,
                                          feature_map=feature_map, **values)
    validate_inputs(query, key, value, feature_proj, num_heads, feature_map, **values)
    if feature_proj is not None and feature_proj.dtype != query.dtype:
        feature_proj = feature_proj.to(query.dtype)
    return torch.ops.flurka.attention(query, key, value, feature_proj, num_heads, feature_map, *values.values())
