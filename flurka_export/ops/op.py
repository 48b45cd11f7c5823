"""`torch.ops.flurka.attention`: the FlurkaAttention op as a torch custom op.

CPU runs the reference; CUDA runs the fused Triton kernel (forward) with the reference's
autograd. During ONNX export the public wrapper emits the com.flurka node instead.
"""

from __future__ import annotations

import torch

from .export_mode import current_export_mode
from .reference import flurka_attention_reference, validate_inputs
from .schema import OP_DOMAIN, OP_NAME, OP_VERSION


@torch.library.custom_op("flurka::attention", mutates_args=())
def _attention_op(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    feature_proj: torch.Tensor | None,
    num_heads: int,
    feature_map: str,
    stabilizer: float,
    eps: float,
) -> torch.Tensor:
    return flurka_attention_reference(
        query, key, value, feature_proj, num_heads=num_heads, feature_map=feature_map, stabilizer=stabilizer, eps=eps
    )


@_attention_op.register_kernel("cuda")
def _attention_cuda(query, key, value, feature_proj, num_heads, feature_map, stabilizer, eps):  # noqa: ANN001
    from ..kernels import flurka_attention_triton, kernel_supports

    if kernel_supports(query, key, value, num_heads):
        return flurka_attention_triton(
            query, key, value, feature_proj, num_heads=num_heads, feature_map=feature_map, stabilizer=stabilizer, eps=eps
        )
    return flurka_attention_reference(
        query, key, value, feature_proj, num_heads=num_heads, feature_map=feature_map, stabilizer=stabilizer, eps=eps
    )


@_attention_op.register_fake
def _attention_fake(query, key, value, feature_proj, num_heads, feature_map, stabilizer, eps):  # noqa: ANN001
    return query.new_empty((query.shape[0], query.shape[1], value.shape[-1]))


def _setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
    query, key, value, feature_proj, num_heads, feature_map, stabilizer, eps = inputs
    ctx.save_for_backward(query, key, value, feature_proj)
    ctx.attrs = (num_heads, feature_map, stabilizer, eps)


def _backward(ctx, grad_out):  # noqa: ANN001
    # Recompute the reference under autograd: exact gradients, no second implementation to keep in sync.
    query, key, value, feature_proj = ctx.saved_tensors
    num_heads, feature_map, stabilizer, eps = ctx.attrs
    wanted = [query, key, value] + ([feature_proj] if feature_proj is not None else [])
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(True) for t in wanted]
        proj = leaves[3] if feature_proj is not None else None
        out = flurka_attention_reference(
            leaves[0], leaves[1], leaves[2], proj,
            num_heads=num_heads, feature_map=feature_map, stabilizer=stabilizer, eps=eps,
        )
        grads = torch.autograd.grad(out, leaves, grad_out, allow_unused=True)
    grads = list(grads) + [None] * (4 - len(grads))
    return (*grads, None, None, None, None)


_attention_op.register_autograd(_backward, setup_context=_setup_context)


def _symbolic_node(query, key, value, feature_proj, num_heads, feature_map, stabilizer, eps):  # noqa: ANN001
    attrs: dict[str, object] = {"num_heads": num_heads, "feature_map": feature_map}
    if feature_map == "relu":
        attrs["stabilizer"] = float(stabilizer)
    elif feature_map == "elu":
        attrs["eps"] = float(eps)
    inputs = [query, key, value] + ([feature_proj] if feature_proj is not None else [])
    return torch.onnx.ops.symbolic(
        f"{OP_DOMAIN}::{OP_NAME}",
        inputs,
        attrs,
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
    stabilizer: float = 1e-3,
    eps: float = 1e-6,
) -> torch.Tensor:
    """FlurkaAttention (SPEC section 2): query [B, Nq, H*d], key [B, Nk, H*d], value [B, Nk, H*dv],
    feature_proj [H, P, d] (rfa, favor) -> [B, Nq, H*dv]."""
    if torch.onnx.is_in_onnx_export():
        args = (query, key, value, feature_proj, num_heads, feature_map, float(stabilizer), float(eps))
        if current_export_mode() == "custom":
            return _symbolic_node(*args)
        return flurka_attention_reference(
            query, key, value, feature_proj, num_heads=num_heads, feature_map=feature_map, stabilizer=stabilizer, eps=eps
        )
    validate_inputs(query, key, value, feature_proj, num_heads, feature_map)
    if feature_proj is not None and feature_proj.dtype != query.dtype:
        feature_proj = feature_proj.to(query.dtype)
    return torch.ops.flurka.attention(query, key, value, feature_proj, num_heads, feature_map, float(stabilizer), float(eps))
