"""Python entry of the fused FlurkaAttention forward: checks, workspace, grid, launches.

`kernel_config` is the single source of truth for block sizes and warps: the JIT path here and the
ahead-of-time build (aot.py, and through it the C launcher) both read it.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch

from ..ops.feature_maps import DEFAULTS, REGISTRY, get
from ..ops.reference import flurka_attention_reference, validate_inputs
from ..ops.schema import TORCH_OP

HEAD_DIMS: tuple[int, ...] = (32, 64, 128)
KERNEL_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)
FMAP_CODES: dict[str, int] = {name: m.enum_id for name, m in REGISTRY.items()}  # = flurka_feature_map_t
INT32_LIMIT = 2**31
MAX_GRID_Y = 65535  # batch*heads runs on grid axis 1


# Per feature map, for half types: (query rows per program, feature tile, whether it holds u = x W^T tiles).
# None as the feature tile: phi is elementwise, one tile of width d. Tests check every registered map has a row.
HALF_TILES: dict[str, tuple[int, int | None, bool]] = {
    "relu": (128, None, False),
    "elu": (128, None, False),
    "rfa": (64, 32, True),
    "favor": (64, 64, True),
    "dpfp": (64, 64, False),
    "favor-causal": (64, 64, True),
}
# Feature maps whose kv_state needs the favor_key_max kernel first (c: the key block's max of u).
NEEDS_KEY_MAX: frozenset[str] = frozenset({"favor"})


def kernel_config(feature_map: str, dtype: torch.dtype | str, d: int, dv: int) -> dict[str, int]:
    """Tile sizes and launch settings of one specialisation (checked against every arch's shared
    memory by the AOT build; registers and spills were checked with cuobjdump for sm_90).

    Half types, head dims <= 64: 4 warps; query tiles of 128 rows amortise the S load when phi is
    elementwise, 64 rows for the tiled maps. Head dims of 128: 8 warps, else the accumulators spill, and
    one stage for maps holding u tiles. float32 (3xTF32 dots, register hungry): 32-row/key/feature tiles
    keep shared memory under sm_86's 99 KB.
    """
    if feature_map not in HALF_TILES:
        raise ValueError(f"the fused kernel has no tile sizes for feature_map {feature_map!r}; "
                         f"allowed: {', '.join(HALF_TILES)}")
    block_n, block_f, holds_u = HALF_TILES[feature_map]
    big = max(d, dv) > 64
    if dtype in (torch.float32, "fp32"):
        return {"BLOCK_N": 32, "BLOCK_K": 32, "BLOCK_F": d if block_f is None else 32, "num_warps": 4,
                "num_stages": 2}
    if block_f is None:
        block_n, block_f = (64 if big else block_n), d
    return {"BLOCK_N": block_n, "BLOCK_K": 32 if big else 64, "BLOCK_F": block_f, "num_warps": 8 if big else 4,
            "num_stages": 1 if (big and holds_u) else 2}


def check_head_dims(d: int, dv: int) -> None:
    for name, value in (("head dim d", d), ("value head dim dv", dv)):
        if value not in HEAD_DIMS:
            raise ValueError(
                f"{name}={value} is not supported by the fused FlurkaAttention kernel; "
                f"allowed: {', '.join(map(str, HEAD_DIMS))}"
            )


def kernel_supports(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, num_heads: int) -> bool:
    """True when the fused kernel handles these inputs (else the op falls back to the reference)."""
    if query.dtype not in KERNEL_DTYPES or query.dim() != 3 or key.dim() != 3 or value.dim() != 3:
        return False
    if num_heads < 1 or query.shape[-1] % num_heads or value.shape[-1] % num_heads:
        return False
    d, dv = query.shape[-1] // num_heads, value.shape[-1] // num_heads
    if d not in HEAD_DIMS or dv not in HEAD_DIMS:
        return False
    if query.shape[0] * num_heads > MAX_GRID_Y:
        return False
    biggest = max(query.shape[1], key.shape[1]) * max(query.shape[-1], value.shape[-1])
    if biggest >= INT32_LIMIT:
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _kernels(interpret: bool) -> dict[str, Any]:
    # Wrapped here, not with @triton.jit at import: CPU tensors get the interpreter even if
    # TRITON_INTERPRET was unset when triton was imported, and aot.py can compile the same source.
    from . import flurka_fwd

    if interpret:
        from triton.runtime.interpreter import InterpretedFunction

        return flurka_fwd.bind_kernels(InterpretedFunction)
    from triton.runtime.jit import JITFunction

    return flurka_fwd.bind_kernels(JITFunction)


def _check_launch(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, feature_proj: torch.Tensor | None,
                  num_heads: int) -> None:
    """The fused kernel's own limits, beyond the op's (validate_inputs): one sentence each."""
    if query.dtype not in KERNEL_DTYPES:
        raise TypeError(f"the fused kernel takes float32, float16 or bfloat16, got {query.dtype}")
    b, nq, hd = query.shape
    nk, h = key.shape[1], num_heads
    check_head_dims(hd // h, value.shape[-1] // h)
    if b * h > MAX_GRID_Y:
        raise ValueError(f"batch*num_heads={b * h} exceeds {MAX_GRID_Y} (grid limit of the fused kernel)")
    if max(nq, nk) * max(hd, value.shape[-1]) >= INT32_LIMIT:
        raise ValueError(f"sequence length x H*d too large for the fused kernel's int32 offsets (Nq={nq}, Nk={nk})")
    devices = {t.device for t in (query, key, value) + ((feature_proj,) if feature_proj is not None else ())}
    if len(devices) != 1:
        raise ValueError(f"all inputs must be on one device, got {sorted(map(str, devices))}")


def flurka_attention_triton(
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
    """FlurkaAttention forward with the fused Triton kernels (docs/op-spec.md section 2).

    query [B, Nq, H*d], key [B, Nk, H*d], value [B, Nk, H*dv], feature_proj [H, P, d] (rfa, favor);
    returns [B, Nq, H*dv] in query's dtype. S, z and den are float32. CUDA tensors run compiled;
    CPU tensors run in Triton's interpreter (slow; for tests).
    """
    fmap = get(feature_map)
    validate_inputs(query, key, value, feature_proj, num_heads, feature_map, stabilizer=stabilizer, eps=eps, nu=nu)
    _check_launch(query, key, value, feature_proj, num_heads)
    attrs = fmap.attribute_values({"stabilizer": stabilizer, "eps": eps, "nu": nu})
    b, nq, _ = query.shape
    nk, h = key.shape[1], num_heads
    d, dv = query.shape[-1] // h, value.shape[-1] // h
    device = query.device
    # CPU tensors always run in the interpreter; TRITON_INTERPRET=1 also interprets CUDA tensors (Triton copies them).
    interpret = device.type == "cpu" or os.environ.get("TRITON_INTERPRET", "") == "1"
    out = torch.empty(b, nq, h * dv, dtype=query.dtype, device=device)
    if b == 0 or nq == 0:
        return out
    q, k, v = query.contiguous(), key.contiguous(), value.contiguous()
    proj = q  # maps without feature_proj never read it; any valid pointer
    num_proj = 0
    if fmap.needs_feature_proj:
        proj = feature_proj.to(query.dtype).contiguous()  # type: ignore[union-attr]
        num_proj = proj.shape[1]
        if num_proj < 1:
            raise ValueError("feature_proj must have at least one feature (P >= 1)")
    p = fmap.kernel_p(d, num_proj, attrs)
    m = fmap.phi_dim(d, num_proj, attrs)
    cfg = kernel_config(feature_map, query.dtype, d, dv)
    f_tiles = -(-fmap.kernel_columns(d, num_proj, attrs) // cfg["BLOCK_F"])
    if f_tiles > MAX_GRID_Y:
        raise ValueError(f"feature_map {feature_map!r} has M={m} features, more than the fused kernel's "
                         f"{MAX_GRID_Y * cfg['BLOCK_F']}; use a smaller nu or num_features")
    consts = {"FMAP": fmap.enum_id, "D": d, "F32": query.dtype == torch.float32,  # float32: 3xTF32 dots
              "UPCAST": interpret and query.dtype == torch.bfloat16,  # the interpreter's bf16 tl.dot is broken
              "BLOCK_F": cfg["BLOCK_F"], "num_warps": cfg["num_warps"], "num_stages": cfg["num_stages"]}
    s = torch.empty(b * h, m, dv, dtype=torch.float32, device=device)
    z = torch.empty(b * h, m, dtype=torch.float32, device=device)
    c = torch.zeros(b * h, dtype=torch.float32, device=device)
    kern = _kernels(interpret)
    if feature_map in NEEDS_KEY_MAX:  # c = max of u over the (batch, head) key block, before phi(K)
        kern["favor_key_max"][(b * h,)](k, proj, c, h, nk, p, BLOCK_K=cfg["BLOCK_K"],
                                        **{n: v for n, v in consts.items() if n != "FMAP"})
    kern["kv_state"][(b * h, f_tiles)](k, v, proj, c, s, z, h, nk, p, float(stabilizer), DV=dv,
                                       BLOCK_K=cfg["BLOCK_K"], **consts)
    kern["query_out"][(-(-nq // cfg["BLOCK_N"]), b * h)](q, proj, s, z, out, h, nq, p, float(stabilizer), float(eps),
                                                        DV=dv, BLOCK_N=cfg["BLOCK_N"], **consts)
    return out


def _attention_cuda(query, key, value, feature_proj, num_heads, feature_map, stabilizer, eps, nu):  # noqa: ANN001
    """torch.ops.flurka.attention on CUDA: the fused kernel where it applies, else the reference."""
    attrs = {"num_heads": num_heads, "feature_map": feature_map, "stabilizer": stabilizer, "eps": eps, "nu": nu}
    if kernel_supports(query, key, value, num_heads):
        return flurka_attention_triton(query, key, value, feature_proj, **attrs)
    return flurka_attention_reference(query, key, value, feature_proj, **attrs)


def register_cuda_kernel() -> None:
    """Make the fused kernel the CUDA implementation of torch.ops.flurka.attention (idempotent)."""
    torch.library.register_kernel(TORCH_OP, "cuda", _attention_cuda)
