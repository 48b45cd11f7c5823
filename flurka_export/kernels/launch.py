"""Python entry of the fused FlurkaAttention forward: checks, workspace, grid, launches.

`kernel_config` is the single source of truth for block sizes and warps: the JIT path here and the
ahead-of-time build (aot.py, and through it the C launcher) both read it.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch

from ..ops.feature_maps import FEATURE_MAPS, NEEDS_FEATURE_PROJ, check_feature_map
from ..ops.reference import validate_inputs

HEAD_DIMS: tuple[int, ...] = (32, 64, 128)
KERNEL_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)
FMAP_CODES: dict[str, int] = {name: i for i, name in enumerate(FEATURE_MAPS)}  # = flurka_feature_map_t
INT32_LIMIT = 2**31
MAX_GRID_Y = 65535  # batch*heads runs on grid axis 1


def kernel_config(feature_map: str, dtype: torch.dtype | str, d: int, dv: int) -> dict[str, int]:
    """Tile sizes and launch settings of one specialisation (checked against every arch's shared
    memory by the AOT build; registers and spills were checked with cuobjdump for sm_90).

    Half types, head dims <= 64: 4 warps; query tiles of 128 rows amortise the S load when phi is
    elementwise, 64 rows for rfa/favor which also hold u tiles. Head dims of 128: 8 warps, else
    the accumulators spill. float32 (3xTF32 dots, register hungry): 32-row/key/feature tiles keep
    shared memory under sm_86's 99 KB.
    """
    is_fp32 = dtype in (torch.float32, "fp32")
    big = max(d, dv) > 64
    if is_fp32:
        return {"BLOCK_N": 32, "BLOCK_K": 32, "BLOCK_F": d if feature_map in ("relu", "elu") else 32,
                "num_warps": 4, "num_stages": 2}
    if feature_map in ("relu", "elu"):
        block_n, block_f = (64 if big else 128), d
    elif feature_map == "rfa":
        block_n, block_f = 64, 32
    else:
        block_n, block_f = 64, 64
    return {"BLOCK_N": block_n, "BLOCK_K": 32 if big else 64, "BLOCK_F": block_f, "num_warps": 8 if big else 4,
            "num_stages": 1 if (big and feature_map in ("rfa", "favor")) else 2}


def num_features(feature_map: str, d: int, num_proj: int) -> int:
    """M, the rows of S: d (relu, elu), 2P (rfa), P (favor)."""
    return d if feature_map in ("relu", "elu") else (2 * num_proj if feature_map == "rfa" else num_proj)


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

        return {name: InterpretedFunction(fn) for name, fn in flurka_fwd.KERNELS.items()}
    from triton.runtime.jit import JITFunction

    return {name: JITFunction(fn) for name, fn in flurka_fwd.KERNELS.items()}


def flurka_attention_triton(
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
    """FlurkaAttention forward with the fused Triton kernels (SPEC section 3).

    query [B, Nq, H*d], key [B, Nk, H*d], value [B, Nk, H*dv], feature_proj [H, P, d] (rfa, favor);
    returns [B, Nq, H*dv] in query's dtype. S, z and den are float32. CUDA tensors run compiled;
    CPU tensors run in Triton's interpreter (slow; for tests).
    """
    check_feature_map(feature_map)
    validate_inputs(query, key, value, feature_proj, num_heads, feature_map)
    if query.dtype not in KERNEL_DTYPES:
        raise TypeError(f"the fused kernel takes float32, float16 or bfloat16, got {query.dtype}")
    b, nq, hd = query.shape
    nk = key.shape[1]
    h = num_heads
    d, dv = hd // h, value.shape[-1] // h
    check_head_dims(d, dv)
    if b * h > MAX_GRID_Y:
        raise ValueError(f"batch*num_heads={b * h} exceeds {MAX_GRID_Y} (grid limit of the fused kernel)")
    if max(nq, nk) * max(hd, h * dv) >= INT32_LIMIT:
        raise ValueError(f"sequence length x H*d too large for the fused kernel's int32 offsets (Nq={nq}, Nk={nk})")
    devices = {t.device for t in (query, key, value) + ((feature_proj,) if feature_proj is not None else ())}
    if len(devices) != 1:
        raise ValueError(f"all inputs must be on one device, got {sorted(map(str, devices))}")
    device = query.device
    # CPU tensors always run in the interpreter; TRITON_INTERPRET=1 also interprets CUDA tensors (Triton copies them).
    interpret = device.type == "cpu" or os.environ.get("TRITON_INTERPRET", "") == "1"

    out = torch.empty(b, nq, h * dv, dtype=query.dtype, device=device)
    if b == 0 or nq == 0:
        return out
    q, k, v = query.contiguous(), key.contiguous(), value.contiguous()
    if feature_map in NEEDS_FEATURE_PROJ:
        assert feature_proj is not None
        proj = feature_proj.to(query.dtype).contiguous()
        p = proj.shape[1]
        if p < 1:
            raise ValueError("feature_proj must have at least one feature (P >= 1)")
    else:
        proj = q  # unused by relu/elu; any valid pointer
        p = 1
    m = num_features(feature_map, d, p)
    cfg = kernel_config(feature_map, query.dtype, d, dv)
    fmap = FMAP_CODES[feature_map]
    f32 = query.dtype == torch.float32  # float32 inputs: 3xTF32 dots (float32 accuracy); half inputs: native dots
    upcast = interpret and query.dtype == torch.bfloat16  # the interpreter's bf16 tl.dot is broken
    s = torch.empty(b * h, m, dv, dtype=torch.float32, device=device)
    z = torch.empty(b * h, m, dtype=torch.float32, device=device)
    c = torch.zeros(b * h, dtype=torch.float32, device=device)
    kern = _kernels(interpret)
    launch = {"num_warps": cfg["num_warps"], "num_stages": cfg["num_stages"]}
    if feature_map == "favor":
        kern["favor_key_max"][(b * h,)](
            k, proj, c, h, nk, p, D=d, BLOCK_K=cfg["BLOCK_K"], BLOCK_F=cfg["BLOCK_F"], F32=f32, UPCAST=upcast, **launch
        )
    f_tiles = 1 if feature_map in ("relu", "elu") else -(-p // cfg["BLOCK_F"])
    kern["kv_state"][(b * h, f_tiles)](
        k, v, proj, c, s, z, h, nk, p, float(stabilizer),
        FMAP=fmap, D=d, DV=dv, BLOCK_K=cfg["BLOCK_K"], BLOCK_F=cfg["BLOCK_F"], F32=f32, UPCAST=upcast, **launch,
    )
    kern["query_out"][(-(-nq // cfg["BLOCK_N"]), b * h)](
        q, proj, s, z, out, h, nq, p, float(stabilizer), float(eps),
        FMAP=fmap, D=d, DV=dv, BLOCK_N=cfg["BLOCK_N"], BLOCK_F=cfg["BLOCK_F"], F32=f32, UPCAST=upcast, **launch,
    )
    return out
