"""causal_kernel_attention: the public causal op (docs/op-spec.md, "Causal kernel attention").

Per head: S_t = S_{t-1} + phi(k_t)^T v_t, z_t = z_{t-1} + phi(k_t), out_t = phi(q_t) S_t / den(phi(q_t) . z_t).
The state is one float32 tensor [B, H, M, dv+1]: S in the first dv columns, z in the last (phi(k)^T times
a ones column appended to v). Query, key, value, the state and the division are float32 whatever the
model's dtype (fp16 numerators overflow after a few hundred tokens); only the result is cast back.

During torch.onnx.export phi and den are traced as ordinary torch ops and the core (the state update and
phi(q) S) becomes one placeholder node, com.flurka::CausalLinearAttentionCore, that
flurka_export.passes.causal_core rewrites into LinearAttention (opset 27) or com.microsoft.LinearAttention.
The placeholder is torch.onnx.ops.symbolic_multi_out (two outputs): with torch 2.13 and
torch.onnx.export(dynamo=True) it comes out as one node with dynamic batch and length, and the key mask's
Where nodes and the guarded denominator are traced around it (tests/ops/causal/test_onnx_core.py).
"""

from __future__ import annotations

import torch

from ..feature_maps import DEFAULTS, REGISTRY, get, phi_dim
from .forms import FORMS

# The maps whose phi(k) reads one key only (FeatureMap.causal): favor's key-side c sees the future.
CAUSAL_FEATURE_MAPS: tuple[str, ...] = tuple(n for n, m in REGISTRY.items() if m.causal)
CORE_DOMAIN = "com.flurka"
CORE_NAME = "CausalLinearAttentionCore"
CORE_VERSION = 1


def causal_state_shape(num_heads: int, head_dim: int, feature_map: str, num_features: int | None,
                       nu: int = DEFAULTS["nu"]) -> tuple[int, int, int]:  # type: ignore[assignment]
    """(H, M, dv + 1) of one layer's state (the batch dim B comes first); dv = head_dim (values have the
    query's head size in the models), M = phi_dim(feature_map, head_dim, num_features, nu)."""
    check_causal(feature_map)
    return num_heads, phi_dim(feature_map, head_dim, num_features, nu=nu), head_dim + 1


def check_causal(feature_map: str) -> None:
    """ValueError unless `feature_map` is a registered map usable causally."""
    get(feature_map)
    if feature_map not in CAUSAL_FEATURE_MAPS:
        hint = " (use favor-causal: its key-side constant reads no key)" if feature_map == "favor" else ""
        raise ValueError(f"feature_map {feature_map!r} is not causal{hint}; causal maps: "
                         f"{', '.join(CAUSAL_FEATURE_MAPS)}")


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    b, t, hd = x.shape
    return x.reshape(b, t, num_heads, hd // num_heads).transpose(1, 2)


def _packed(x: torch.Tensor) -> torch.Tensor:
    b, h, t, m = x.shape
    return x.transpose(1, 2).reshape(b, t, h * m)


def _validate(query, key, value, past_state, key_mask, num_heads, m, form) -> None:  # noqa: ANN001
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; allowed: {', '.join(FORMS)}")
    if not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
    for name, x in (("query", query), ("key", key), ("value", value)):
        if x.dim() != 3 or x.shape[-1] % num_heads:
            raise ValueError(f"{name} must be [B, T, H*d] with H={num_heads} dividing its last dim, "
                             f"got {tuple(x.shape)}")
    if query.shape != key.shape or query.shape[:2] != value.shape[:2]:
        raise ValueError(f"query/key [B, T, H*d] and value [B, T, H*dv] disagree: {tuple(query.shape)}, "
                         f"{tuple(key.shape)}, {tuple(value.shape)}")
    want = (query.shape[0], num_heads, m, value.shape[-1] // num_heads + 1)
    if past_state is not None and tuple(past_state.shape) != want:
        raise ValueError(f"past_state must be [B, H, M, dv+1] = {list(want)}, got {tuple(past_state.shape)}")
    if key_mask is not None and tuple(key_mask.shape) != tuple(query.shape[:2]):
        raise ValueError(f"key_mask must be [B, T] = {list(query.shape[:2])}, got {tuple(key_mask.shape)}")


def _core_node(phq: torch.Tensor, phk: torch.Tensor, v1: torch.Tensor, state: torch.Tensor,
               num_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The placeholder node, in LinearAttention's layout: phi(q), phi(k) [B, T, H*M], v1 [B, T, H*(dv+1)],
    past_state [B, H, M, dv+1] -> (o [B, T, H*(dv+1)], present_state [B, H, M, dv+1])."""
    o, present = torch.onnx.ops.symbolic_multi_out(
        f"{CORE_DOMAIN}::{CORE_NAME}", [_packed(phq), _packed(phk), _packed(v1), state], {"num_heads": num_heads},
        dtypes=[state.dtype, state.dtype], shapes=[(v1.shape[0], v1.shape[2], v1.shape[1] * v1.shape[3]),
                                                   state.shape], version=CORE_VERSION)
    return _heads(o, num_heads), present


def causal_kernel_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    past_state: torch.Tensor | None = None,
    feature_proj: torch.Tensor | None = None,
    *,
    num_heads: int,
    feature_map: str,
    stabilizer: float = DEFAULTS["stabilizer"],
    eps: float = DEFAULTS["eps"],
    nu: int = DEFAULTS["nu"],  # type: ignore[assignment]
    key_mask: torch.Tensor | None = None,
    chunk_size: int = 64,
    form: str = "chunked",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal kernel attention continuing from `past_state`.

    query/key [B, T, H*d], value [B, T, H*dv], past_state [B, H, M, dv+1] float32 or None (zeros),
    feature_proj [H, P, d] for the maps with random features -> (out [B, T, H*dv] in query's dtype,
    present_state [B, H, M, dv+1] float32; float64 inputs keep float64 throughout, for tests).
    state[..., :dv] is S = sum phi(k)^T v, state[..., dv] is z = sum phi(k).

    key_mask [B, T] (1 = real token, 0 = left padding): a pad key adds nothing to S or z (phi(k) and v are
    zeroed with torch.where, never multiplied, so NaN/inf in pad rows cannot leak); a pad row's output is 0.
    form: "naive" (masked O(T^2)), "chunked" (prefill, chunk_size tokens per chunk), "recurrent" (token by
    token); all three agree. feature_map must be one of CAUSAL_FEATURE_MAPS; stabilizer, eps and nu as the
    map reads them (docs/op-spec.md section 5).
    """
    check_causal(feature_map)
    fmap = get(feature_map)
    attrs = fmap.attribute_values({"stabilizer": float(stabilizer), "eps": float(eps), "nu": nu})
    d, dv = query.shape[-1] // num_heads, value.shape[-1] // num_heads
    _validate(query, key, value, past_state, key_mask, num_heads, fmap.phi_dim(d, _num_proj(feature_proj), attrs),
              form)
    acc = torch.float64 if query.dtype == torch.float64 else torch.float32
    proj = feature_proj.to(acc) if feature_proj is not None else None
    phq = fmap.phi(_heads(query.to(acc), num_heads), proj, attrs, True)
    phk = fmap.phi(_heads(key.to(acc), num_heads), proj, attrs, False)
    v = _heads(value.to(acc), num_heads)
    v1 = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)
    keep = None if key_mask is None else (key_mask != 0)[:, None, :, None]  # [B, 1, T, 1]
    if keep is not None:
        phk = torch.where(keep, phk, 0.0)
        v1 = torch.where(keep, v1, 0.0)
    if past_state is None:
        state = phq.new_zeros(phq.shape[0], num_heads, phq.shape[-1], dv + 1)
    else:
        state = past_state.to(acc)
    if torch.onnx.is_in_onnx_export():
        o, present = _core_node(phq, phk, v1, state, num_heads)
    elif form == "chunked":
        o, present = FORMS[form](phq, phk, v1, state, chunk_size)
    else:
        o, present = FORMS[form](phq, phk, v1, state)
    num, den = o[..., :dv], fmap.den(o[..., dv:], attrs)
    if keep is not None:  # a pad row may have z = 0 (den 0) or a non-finite phi(q): its output is 0
        num, den = torch.where(keep, num, 0.0), torch.where(keep, den, 1.0)
    out = (num / den).transpose(1, 2).reshape(query.shape[0], query.shape[1], num_heads * dv)
    return out.to(query.dtype), present


def _num_proj(feature_proj: torch.Tensor | None) -> int:
    return 0 if feature_proj is None else int(feature_proj.shape[1])
