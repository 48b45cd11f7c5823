"""GPU checks of the fused FlurkaAttention kernel (run by scripts/gpu_check.sh on a CUDA machine).

Steps (each one runs alone with --step, so one failure does not hide the others):
  numerics  the Triton kernel (JIT) against the reference op on CUDA, all feature maps and dtypes
  aot       build-kernels for this GPU's arch, compile the C launcher into a .so (it opens libcuda.so.1
            itself, as in the TensorRT plugin: nothing links libcuda), call it through ctypes on torch
            CUDA tensors, compare with the reference, check error codes
  timing    kernel vs the unfused reference op vs torch SDPA (flash) at N in 4k..64k, k = 256 keys,
            with achieved GB/s against the H200's ~4.8 TB/s (p50 of CUDA-event timings from
            flurka_export.bench.timing, the package's timing harness)

Imports only flurka_export.kernels and flurka_export.ops (the GPU machine has torch and triton,
maybe not onnx or pytest).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import math
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flurka_export.bench.report import LEGEND, MARK  # noqa: E402
from flurka_export.bench.timing import time_cuda  # noqa: E402
from flurka_export.kernels import flurka_attention_triton  # noqa: E402
from flurka_export.ops.feature_maps import (  # noqa: E402
    DEFAULTS,
    FEATURE_MAPS,
    NEEDS_FEATURE_PROJ,
    OPTIONAL_ATTRIBUTES,
    REGISTRY,
)
from flurka_export.ops.reference import flurka_attention_reference  # noqa: E402

NU = 2  # dpfp's nu in these checks (M = 4 d: several feature tiles)
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TOL = {torch.float32: (2e-5, 1e-4), torch.float16: (3e-3, 1e-2), torch.bfloat16: (1.5e-2, 2e-2)}
PEAK_GBS = 4800.0  # H200 HBM3e


def inputs(fm: str, b: int, nq: int, nk: int, h: int, d: int, dv: int, p: int, dtype: torch.dtype,
           scale: float = 1.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    g = torch.Generator(device="cuda").manual_seed(seed)
    q = torch.randn(b, nq, h * d, device="cuda", generator=g) * scale
    k = torch.randn(b, nk, h * d, device="cuda", generator=g) * scale
    v = torch.randn(b, nk, h * dv, device="cuda", generator=g)
    proj = torch.randn(h, p, d, device="cuda", generator=g) if fm in NEEDS_FEATURE_PROJ else None
    cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
    return cast(q), cast(k), cast(v), cast(proj)


def reference32(q, k, v, proj, h, fm):  # noqa: ANN001, ANN201
    up = lambda t: None if t is None else t.float()  # noqa: E731
    return flurka_attention_reference(up(q), up(k), up(v), up(proj), num_heads=h, feature_map=fm, nu=NU)


def compare(name: str, got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> bool:
    atol, rtol = TOL[dtype]
    err = (got.float() - want).abs()
    bound = atol + rtol * want.abs()
    ok = bool(torch.isfinite(got).all()) and bool((err <= bound).all())
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: max abs err {err.max().item():.2e} (max |ref| {want.abs().max().item():.2e})")
    return ok


CASES = [  # (b, nq, nk, h, d, dv, p)
    (2, 37, 70, 2, 32, 64, 70),
    (2, 4099, 256, 8, 64, 64, 64),
    (1, 1000, 1024, 4, 128, 128, 256),
    (3, 129, 1, 2, 64, 32, 16),
]


def step_numerics() -> bool:
    ok = True
    for fm in FEATURE_MAPS:
        for dname, dtype in DTYPES.items():
            for b, nq, nk, h, d, dv, p in CASES:
                q, k, v, proj = inputs(fm, b, nq, nk, h, d, dv, p, dtype)
                got = flurka_attention_triton(q, k, v, proj, num_heads=h, feature_map=fm, nu=NU)
                ok &= compare(f"{fm} {dname} B={b} Nq={nq} Nk={nk} H={h} d={d} dv={dv} P={p}", got,
                              reference32(q, k, v, proj, h, fm), dtype)
        # fp16, 1024 keys, values up to ~30: float32 accumulation must avoid overflow.
        q, k, v, proj = inputs(fm, 1, 64, 1024, 2, 64, 64, 32, torch.float32, scale=3.0)
        v = v * 30
        got = flurka_attention_triton(q.half(), k.half(), v.half(), None if proj is None else proj.half(),
                                      num_heads=2, feature_map=fm, nu=NU)
        want = reference32(q.half(), k.half(), v.half(), None if proj is None else proj.half(), 2, fm)
        finite = bool(torch.isfinite(got).all())
        close = torch.allclose(got.float(), want, atol=0.1, rtol=2e-2)
        print(f"  {'ok  ' if finite and close else 'FAIL'} {fm} fp16 Nk=1024 |v|~30: finite={finite} close={close}")
        ok &= finite and close
    # The torch op dispatches to the kernel on CUDA.
    from flurka_export.ops import flurka_attention

    q, k, v, proj = inputs("elu", 2, 300, 256, 4, 64, 64, 0, torch.float16)
    ok &= compare("torch.ops.flurka.attention on CUDA", flurka_attention(q, k, v, num_heads=4, feature_map="elu"),
                  reference32(q, k, v, None, 4, "elu"), torch.float16)
    return ok


class Params(ctypes.Structure):
    """flurka_attention_params_t (flurka_export/kernels/c_api.py): the sizes, then the attributes' members."""

    _fields_ = [(n, ctypes.c_int) for n in ("batch", "num_heads", "q_len", "kv_len", "head_dim", "value_dim",
                                            "num_proj", "dtype", "feature_map")] + \
               [(a.name, {"float": ctypes.c_float, "int": ctypes.c_int}[a.c_type]) for a in OPTIONAL_ATTRIBUTES
                if a.c_type]


def build_launcher(out: Path) -> ctypes.CDLL:
    from flurka_export.kernels.aot import build_kernels, find_cuda_include

    major, minor = torch.cuda.get_device_capability()
    arch = major * 10 + minor
    src = out / "aot"
    t = time.time()
    manifest = build_kernels(src, [arch], head_dims=(64, 128), value_dims=(64,), log=None)
    print(f"  built {len(manifest['images'])} images for sm_{arch} in {time.time() - t:.0f} s -> {src}")
    include = find_cuda_include()
    if include is None:
        raise RuntimeError("no cuda.h found (set CUDA_HOME)")
    cc = shutil.which("gcc") or shutil.which("cc")
    so = out / "libflurka_attention.so"
    srcs = [str(src / f) for f in manifest["files"]]
    # No -lcuda: the launcher dlopens the driver (libcuda.so.1) on first use, as in the plugin.
    if cc:
        cmd = [cc, "-shared", "-fPIC", "-O2", "-std=c99", f"-I{include}", *srcs, "-o", str(so), "-lpthread", "-ldl"]
    else:
        cmd = ["nvcc", "-shared", "-Xcompiler", "-fPIC", f"-I{include}", *srcs, "-o", str(so), "-ldl"]
    print("  " + " ".join(cmd[:3]) + " ...")
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"compiling the launcher failed:\n{r.stderr[-3000:]}")
    print(f"  compiled {so} ({so.stat().st_size / 1e6:.1f} MB) in {time.time() - t:.0f} s")
    lib = ctypes.CDLL(str(so))
    lib.flurka_attention_workspace_size.restype = ctypes.c_size_t
    lib.flurka_attention_workspace_size.argtypes = [ctypes.POINTER(Params)]
    lib.flurka_attention_supported.argtypes = [ctypes.POINTER(Params)]
    lib.flurka_attention_launch.argtypes = [ctypes.POINTER(Params)] + [ctypes.c_void_p] * 6 + \
        [ctypes.c_size_t, ctypes.c_void_p]
    lib.flurka_attention_error_string.restype = ctypes.c_char_p
    return lib


def c_launch(lib: ctypes.CDLL, fm: str, q, k, v, proj, h, misalign=False):  # noqa: ANN001, ANN201
    b, nq, hd = q.shape
    dv = v.shape[-1] // h
    attrs = {**DEFAULTS, "nu": NU}
    p = Params(b, h, nq, k.shape[1], hd // h, dv, proj.shape[1] if proj is not None else 0,
               list(DTYPES.values()).index(q.dtype), REGISTRY[fm].enum_id,
               *(attrs[name] for name, _ in Params._fields_[9:]))
    ws_size = lib.flurka_attention_workspace_size(ctypes.byref(p))
    ws = torch.empty(max(ws_size, 1), dtype=torch.uint8, device="cuda")
    out = torch.empty(b, nq, h * dv, dtype=q.dtype, device="cuda")
    qp = q.data_ptr() + (2 if misalign else 0)
    rc = lib.flurka_attention_launch(ctypes.byref(p), qp, k.data_ptr(), v.data_ptr(),
                                     proj.data_ptr() if proj is not None else None, out.data_ptr(), ws.data_ptr(),
                                     ws_size, torch.cuda.current_stream().cuda_stream)
    return rc, out, p


def step_aot(out: Path) -> bool:
    out.mkdir(parents=True, exist_ok=True)
    lib = build_launcher(out)
    ok = True
    for fm in FEATURE_MAPS:
        for dname, dtype in DTYPES.items():
            for b, nq, nk, h, d, dv, p in [(2, 4099, 256, 8, 64, 64, 64), (1, 77, 1000, 2, 128, 64, 100)]:
                q, k, v, proj = inputs(fm, b, nq, nk, h, d, dv, p, dtype)
                rc, got, params = c_launch(lib, fm, q, k, v, proj, h)
                torch.cuda.synchronize()
                if rc:
                    print(f"  FAIL C launch {fm} {dname}: rc={rc} {lib.flurka_attention_error_string(rc).decode()}")
                    ok = False
                    continue
                ok &= compare(f"C launcher {fm} {dname} B={b} Nq={nq} Nk={nk} d={d} dv={dv} P={p}", got,
                              reference32(q, k, v, proj, h, fm), dtype)
                if lib.flurka_attention_supported(ctypes.byref(params)) != 1:
                    print(f"  FAIL flurka_attention_supported is not 1 for {fm} {dname}")
                    ok = False
    # Error codes: head dim 32 was not built here (2 = unsupported), misaligned query (4).
    q, k, v, _ = inputs("relu", 1, 8, 8, 2, 32, 64, 0, torch.float16)
    rc, _, _ = c_launch(lib, "relu", q, k, v, None, 2)
    print(f"  {'ok  ' if rc == 2 else 'FAIL'} unbuilt head dim -> rc={rc} ({lib.flurka_attention_error_string(rc).decode()})")
    ok &= rc == 2
    q, k, v, _ = inputs("relu", 1, 8, 8, 2, 64, 64, 0, torch.float16)
    rc, _, _ = c_launch(lib, "relu", q, k, v, None, 2, misalign=True)
    print(f"  {'ok  ' if rc == 4 else 'FAIL'} misaligned query -> rc={rc} ({lib.flurka_attention_error_string(rc).decode()})")
    ok &= rc == 4
    # C launcher speed at the headline shape (same kernels as the JIT path).
    q, k, v, _ = inputs("relu", 4, 65536, 256, 16, 64, 64, 0, torch.float16)
    ms = time_cuda(lambda: c_launch(lib, "relu", q, k, v, None, 16), iters=20, warmup=5).p50
    gbs = (q.numel() * 2 * 2 + (k.numel() + v.numel()) * 2) / ms / 1e6
    print(f"  C launcher relu fp16 B=4 N=64k H=16 d=64: {ms:.3f} ms, {gbs:.0f} GB/s ({100 * gbs / PEAK_GBS:.0f}% of peak)")
    return ok


def step_timing() -> bool:
    b, h, d, kk, p = 4, 16, 64, 256, 64
    print(f"  B={b} H={h} d=dv={d}, FLuRKA keys k={kk}, P={p} (rfa: M=2P), fp16; GB/s = (Q + K + V + proj + out) bytes / time")
    print(f"  {'N':>6} {'map':>6} {'kernel ms':>10} {'GB/s':>7} {'%peak':>6} {'ref ms':>8} {'speedup':>8} {'SDPA ms':>9}")
    marked = False
    for n in (4096, 16384, 32768, 65536):
        qs = torch.randn(b, h, n, d, device="cuda", dtype=torch.float16)
        try:
            sdpa = time_cuda(functools.partial(torch.nn.functional.scaled_dot_product_attention, qs, qs, qs),
                             iters=5, warmup=2).p50
        except Exception as e:  # noqa: BLE001
            print(f"  SDPA failed at N={n}: {e}")
            sdpa = math.nan
        qs = None
        for fm in FEATURE_MAPS:
            q, k, v, proj = inputs(fm, b, n, kk, h, d, d, p, torch.float16)
            t = time_cuda(functools.partial(flurka_attention_triton, q, k, v, proj, num_heads=h, feature_map=fm, nu=NU),
                          iters=20, warmup=5)
            ms, mark = t.p50, MARK if t.unstable else ""
            try:
                tr = time_cuda(functools.partial(flurka_attention_reference, q, k, v, proj, num_heads=h,
                                                 feature_map=fm, nu=NU), iters=5, warmup=2)
                ref, mark = tr.p50, MARK if t.unstable or tr.unstable else ""
            except torch.OutOfMemoryError:
                ref = math.nan
            marked |= bool(mark)
            nbytes = (q.numel() * 2 + k.numel() + v.numel() + (proj.numel() if proj is not None else 0)) * 2
            gbs = nbytes / ms / 1e6
            print(f"  {n:>6} {fm:>6} {ms:>10.3f} {gbs:>7.0f} {100 * gbs / PEAK_GBS:>5.0f}% {ref:>8.3f} "
                  f"{ref / ms:>7.1f}x{mark or ' '} {sdpa:>8.3f}")
            q = k = v = proj = None
            torch.cuda.empty_cache()
    if marked:
        print(f"  {LEGEND}")
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", choices=("numerics", "aot", "timing", "all"), default="all")
    ap.add_argument("--out", default=os.environ.get("OUT") or "/tmp/flurka_gpu", help="where the AOT build goes")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU visible to torch")
        return 2
    import triton

    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}, "
          f"{torch.cuda.get_device_name()} sm_{''.join(map(str, torch.cuda.get_device_capability()))}")
    steps = {"numerics": step_numerics, "aot": lambda: step_aot(Path(args.out)), "timing": step_timing}
    names = list(steps) if args.step == "all" else [args.step]
    failed = []
    for name in names:
        print(f"--- {name}", flush=True)
        t = time.time()
        try:
            ok = steps[name]()
        except Exception:  # noqa: BLE001  - report and go on to the next step
            traceback.print_exc()
            ok = False
        print(f"--- {name}: {'PASS' if ok else 'FAIL'} ({time.time() - t:.0f} s)", flush=True)
        if not ok:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
