"""Ahead-of-time build of the fused kernels for the TensorRT plugin (no GPU needed).

`build_kernels(out_dir, archs)` compiles every specialisation (feature map x dtype x d x dv) of the
kernels in flurka_fwd.py with `triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))`
to a cubin per arch, plus forward-compatible PTX, and writes into out_dir:

- flurka_attention_launch.h  the public C API (CUDA driver API only)
- flurka_attention_launch.c  the launcher: picks an image for the device, loads it once per context
- flurka_kernels.h / flurka_kernels.c  the table describing the images
- flurka_kernels_sm<arch>.c, flurka_kernels_ptx_sm<arch>.c  the images as C arrays
- manifest.json  the same table for tools and tests; "files" lists every .c file to compile

The generated C needs only cuda.h to compile (plus libc, pthread and dlopen): it opens the driver, libcuda.so.1,
at run time, so nothing links libcuda.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..ops.feature_maps import FEATURE_MAPS, get
from . import c_headers, c_sources
from .c_api import DTYPES
from .launch import FMAP_CODES, HEAD_DIMS, NEEDS_KEY_MAX, kernel_config

DTYPE_CODES: dict[str, int] = {name: i for i, name in enumerate(DTYPES)}
KINDS: tuple[str, ...] = ("favor_key_max", "kv_state", "query_out")  # = FLURKA_KERNEL_* in flurka_kernels.h
DEFAULT_ARCHS: tuple[int, ...] = (80, 86, 89, 90)
# Triton targets sm_90a / sm_100a (arch-specific: no other GPU can JIT them) from 90 up, so the embedded PTX
# is always compiled for an arch below 90: the newest requested one, else this one.
PORTABLE_PTX_FALLBACK = 80
NUM_SCRATCH_PARAMS = 2  # Triton 3.x appends global and profile scratch pointers to every kernel
# PTX ISA version -> the CUDA release that introduced it and its minimum Linux driver (CUDA release notes).
PTX_MIN_DRIVER: dict[str, tuple[str, str]] = {
    "8.0": ("12.0", "525"), "8.1": ("12.1", "530"), "8.2": ("12.2", "535"), "8.3": ("12.3", "545"),
    "8.4": ("12.4", "550"), "8.5": ("12.5", "555"), "8.6": ("12.6", "560"), "8.7": ("12.8", "570"),
    "8.8": ("12.9", "575"), "9.0": ("13.0", "580"),
}
# Opt-in shared memory per block (bytes) by compute capability: a kernel above it cannot launch there.
MAX_SHARED: dict[int, int] = {70: 98304, 75: 65536, 80: 166912, 86: 101376, 87: 166912, 89: 101376, 90: 232448,
                              100: 232448, 103: 232448, 120: 101376}

# Runtime (non-constexpr) arguments of each kernel, in order, with their Triton types; "T" is the
# input dtype. The C launcher passes exactly these, then Triton's trailing scratch pointers.
RUNTIME_ARGS: dict[str, tuple[tuple[str, str], ...]] = {
    "favor_key_max": (("k_ptr", "*T"), ("w_ptr", "*T"), ("c_ptr", "*fp32"), ("H", "i32"), ("Nk", "i32"),
                      ("P", "i32")),
    "kv_state": (("k_ptr", "*T"), ("v_ptr", "*T"), ("w_ptr", "*T"), ("c_ptr", "*fp32"), ("s_ptr", "*fp32"),
                 ("z_ptr", "*fp32"), ("H", "i32"), ("Nk", "i32"), ("P", "i32"), ("stabilizer", "fp32")),
    "query_out": (("q_ptr", "*T"), ("w_ptr", "*T"), ("s_ptr", "*fp32"), ("z_ptr", "*fp32"), ("o_ptr", "*T"),
                  ("H", "i32"), ("Nq", "i32"), ("P", "i32"), ("stabilizer", "fp32"), ("eps", "fp32")),
}


@dataclasses.dataclass(frozen=True)
class Spec:
    """One kernel specialisation (what the C table is keyed on)."""

    kind: str
    feature_map: str
    dtype: str
    d: int
    dv: int  # 0 for favor_key_max (does not depend on dv)

    def constexprs(self) -> dict[str, Any]:
        cfg = kernel_config(self.feature_map, self.dtype, self.d, self.dv or self.d)
        c: dict[str, Any] = {"D": self.d, "F32": self.dtype == "fp32", "UPCAST": False}
        if self.kind == "favor_key_max":
            c.update(BLOCK_K=cfg["BLOCK_K"], BLOCK_F=cfg["BLOCK_F"])
        else:
            c.update(FMAP=FMAP_CODES[self.feature_map], DV=self.dv, BLOCK_F=cfg["BLOCK_F"])
            c["BLOCK_K" if self.kind == "kv_state" else "BLOCK_N"] = cfg["BLOCK_K" if self.kind == "kv_state" else "BLOCK_N"]
        return c


def all_specs(feature_maps: Iterable[str] = FEATURE_MAPS, dtypes: Iterable[str] = DTYPES,
              head_dims: Iterable[int] = HEAD_DIMS, value_dims: Iterable[int] | None = None) -> list[Spec]:
    """Every specialisation the C launcher can need for these feature maps, dtypes and head dims."""
    head_dims = tuple(head_dims)
    value_dims = head_dims if value_dims is None else tuple(value_dims)
    specs: list[Spec] = []
    for fm in feature_maps:
        for dt in dtypes:
            for d in head_dims:
                if fm in NEEDS_KEY_MAX:
                    specs.append(Spec("favor_key_max", fm, dt, d, 0))
                for dv in value_dims:
                    specs.append(Spec("kv_state", fm, dt, d, dv))
                    specs.append(Spec("query_out", fm, dt, d, dv))
    return specs


def _compile_one(spec: Spec, arch: int, want_ptx: bool) -> dict[str, Any]:
    # Triton's code generator misbehaves under TRITON_INTERPRET=1 (set by the kernel tests): compile without it.
    saved = os.environ.pop("TRITON_INTERPRET", None)
    try:
        return _compile(spec, arch, want_ptx)
    finally:
        if saved is not None:
            os.environ["TRITON_INTERPRET"] = saved


def _compile(spec: Spec, arch: int, want_ptx: bool) -> dict[str, Any]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.runtime.jit import JITFunction

    from . import flurka_fwd

    fn = flurka_fwd.bind_kernels(JITFunction)[spec.kind]  # not triton.jit: must compile even under TRITON_INTERPRET
    constexprs = spec.constexprs()
    signature: dict[str, str] = {}
    for name, ty in RUNTIME_ARGS[spec.kind]:
        signature[name] = ty.replace("T", spec.dtype)
    for name in fn.arg_names:
        if name not in signature:
            signature[name] = "constexpr"
    # Pointers are 16-byte aligned (the launcher checks): lets Triton vectorise loads and stores.
    attrs = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(fn.arg_names) if signature[name].startswith("*")}
    src = triton.compiler.ASTSource(fn, signature, constexprs, attrs)
    cfg = kernel_config(spec.feature_map, spec.dtype, spec.d, spec.dv or spec.d)
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": cfg["num_warps"], "num_stages": cfg["num_stages"]})
    md = compiled.metadata
    check_launch_metadata(md, f"{spec} sm_{arch}")
    ptx = compiled.asm["ptx"]
    if isinstance(ptx, bytes):
        ptx = ptx.decode()
    m = re.search(r"\.entry\s+(\w+)\s*\(([^)]*)\)", ptx, re.S)
    if not m:
        raise RuntimeError(f"{spec} sm_{arch}: no .entry in the PTX")
    num_params = len(re.findall(r"\.param\s", m.group(2)))
    num_args = len(RUNTIME_ARGS[spec.kind])
    if num_params != num_args + NUM_SCRATCH_PARAMS:
        raise RuntimeError(f"{spec} sm_{arch}: the kernel takes {num_params} parameters; the C launcher passes "
                           f"{num_args} arguments + {NUM_SCRATCH_PARAMS} scratch pointers (another Triton version?)")
    version = re.search(r"^\s*\.version\s+(\d+\.\d+)", ptx, re.M)
    target = re.search(r"^\s*\.target\s+(\w+)", ptx, re.M)
    if want_ptx and (target is None or target.group(1).endswith("a")):
        raise RuntimeError(f"{spec} sm_{arch}: PTX target {target and target.group(1)} is arch-specific; "
                           "only forward-compatible PTX is embedded")
    shared = int(md.shared)
    limit = MAX_SHARED.get(arch, 101376)
    if shared > limit:
        raise RuntimeError(f"{spec} needs {shared} bytes of shared memory, sm_{arch} allows {limit}: retune kernel_config")
    return {
        "spec": dataclasses.asdict(spec), "arch": arch, "name": m.group(1), "cubin": compiled.asm["cubin"],
        "ptx": ptx if want_ptx else None, "ptx_version": version.group(1) if version else None,
        "shared": shared, "num_warps": int(md.num_warps),
        "num_params": num_params, "block_n": cfg["BLOCK_N"], "block_f": cfg["BLOCK_F"],
    }


def check_launch_metadata(md: Any, what: str) -> None:
    """The C launcher does a plain cuLaunchKernel: one CTA per program, no cluster, no programmatic dependent
    launch, no cooperative grid, no tensor descriptors or tensor memory, no scratch buffers. Refuse anything else."""
    problems = []
    if int(getattr(md, "num_ctas", 1)) != 1:
        problems.append(f"num_ctas={md.num_ctas}")
    for flag in ("launch_pdl", "launch_cooperative_grid"):
        if getattr(md, flag, False):
            problems.append(f"{flag}=True")
    if getattr(md, "tensordesc_meta", None):
        problems.append("tensor descriptors")
    for field in ("global_scratch_size", "profile_scratch_size", "tmem_size"):
        if getattr(md, field, 0):
            problems.append(f"{field}={getattr(md, field)}")
    if problems:
        raise RuntimeError(f"{what}: {', '.join(problems)}; the C launcher supports plain launches only")


def ptx_arch(archs: Sequence[int]) -> int:
    """The arch of the embedded PTX: the newest requested arch below 90 (sm_90a and later PTX is arch-specific
    and no other GPU can JIT it), else PORTABLE_PTX_FALLBACK, compiled for its PTX only."""
    portable = [a for a in archs if a < 90]
    return max(portable) if portable else PORTABLE_PTX_FALLBACK


def min_driver(ptx_version: str | None) -> str:
    """'575 (CUDA 12.9)' for PTX ISA 8.8: what a driver needs to JIT the embedded PTX."""
    if ptx_version in PTX_MIN_DRIVER:
        cuda, driver = PTX_MIN_DRIVER[ptx_version]
        return f"{driver} (CUDA {cuda})"
    return f"the driver of the CUDA release with PTX ISA {ptx_version}"


def compile_all(specs: Sequence[Spec], archs: Sequence[int], jobs: int | None = None,
                log: Any = None) -> list[dict[str, Any]]:
    """Cubins for every arch, and PTX of ptx_arch(archs) (a PTX-only result, cubin None, when that arch is
    not among archs)."""
    p_arch = ptx_arch(archs)
    work = [(s, a, a == p_arch) for a in archs for s in specs]
    if p_arch not in archs:
        work += [(s, p_arch, True) for s in specs]
    jobs = jobs or max(1, min(len(work), os.cpu_count() or 1))
    results: list[dict[str, Any]] = []
    # Always in fresh spawned processes without TRITON_INTERPRET: a triton imported in interpreter
    # mode (the kernel tests) cannot compile, and fork would copy the parent's torch/triton threads.
    ctx = multiprocessing.get_context("spawn")
    saved = os.environ.pop("TRITON_INTERPRET", None)
    try:
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_compile_one, *w) for w in work]
            for i, (f, w) in enumerate(zip(futures, work, strict=True)):
                r = f.result()
                if w[1] not in archs:
                    r["cubin"] = None  # compiled only for its forward-compatible PTX
                results.append(r)
                if log and ((i + 1) % 25 == 0 or i + 1 == len(work)):
                    log(f"compiled {i + 1}/{len(work)}")
    finally:
        if saved is not None:
            os.environ["TRITON_INTERPRET"] = saved
    return results


def _c_words(data: bytes) -> str:
    # 64-bit words: 8x fewer initialisers than bytes keeps compile times sane; also 8-byte aligned.
    data = data + b"\0" * (-len(data) % 8)
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]
    lines = []
    for i in range(0, len(words), 6):
        lines.append(", ".join(f"0x{w:016x}ull" for w in words[i:i + 6]))
    return ",\n".join(lines)


def write_sources(results: Sequence[dict[str, Any]], out_dir: str | os.PathLike[str], archs: Sequence[int]) -> dict[str, Any]:
    """Write the launcher, the table (flurka_kernels.c) and the images, one source file per arch and
    format (flurka_kernels_sm90.c, flurka_kernels_ptx_sm89.c): hundreds of MB of C compile in
    parallel that way. Compile every .c file written (manifest["files"])."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("flurka_kernels_*.c"):  # a previous build's arch files
        old.unlink()
    (out / "flurka_attention_launch.h").write_text(c_headers.LAUNCH_H)
    (out / "flurka_attention_launch.c").write_text(c_sources.LAUNCH_C)
    (out / "flurka_kernels.h").write_text(c_headers.KERNELS_H)
    data: dict[str, list[str]] = {}
    externs: list[str] = []
    rows: list[str] = []
    manifest_images = []
    for r in results:
        images = [("cubin", r["arch"], r["cubin"])] if r["cubin"] is not None else []
        if r["ptx"] is not None:
            images.append(("ptx", r["arch"], r["ptx"].encode() + b"\0"))  # PTX is loaded as a C string
        for fmt, arch, blob in images:
            var = f"flurka_img_{len(rows)}"
            fname = f"flurka_kernels_{'ptx_' if fmt == 'ptx' else ''}sm{arch}.c"
            data.setdefault(fname, [c_headers.KERNELS_C_PRELUDE]).append(
                f"const unsigned long long {var}[] = {{\n{_c_words(blob)}\n}};\n")
            externs.append(f"extern const unsigned long long {var}[];")
            s = r["spec"]
            rows.append(
                f"  {{{KINDS.index(s['kind'])}, {FMAP_CODES[s['feature_map']]}, {DTYPE_CODES[s['dtype']]}, "
                f"{s['d']}, {s['dv']}, {arch}, {1 if fmt == 'ptx' else 0}, {var}, {len(blob)}u, "
                f"\"{r['name']}\", {r['shared']}, {r['num_warps']}, {r['num_params']}, {r['block_n']}, {r['block_f']}}}"
            )
            manifest_images.append({**s, "arch": arch, "format": fmt, "bytes": len(blob), "shared": r["shared"],
                                    "num_warps": r["num_warps"], "num_params": r["num_params"],
                                    "block_n": r["block_n"], "block_f": r["block_f"], "file": fname})
    for fname, parts in data.items():
        (out / fname).write_text("\n".join(parts))
    table = [c_headers.KERNELS_C_PRELUDE, "\n".join(externs), ""]
    table.append("const flurka_kernel_image_t flurka_kernel_images[] = {\n" + ",\n".join(rows) + "\n};\n")
    table.append(f"const int flurka_kernel_image_count = {len(rows)};\n")
    versions = sorted({r["ptx_version"] for r in results if r["ptx"] is not None and r.get("ptx_version")})
    ptx_version = versions[-1] if versions else None
    info = (f"cubins for sm_{', sm_'.join(map(str, archs))}; PTX for sm_{ptx_arch(archs)} and newer GPUs "
            f"(PTX ISA {ptx_version}, needs driver {min_driver(ptx_version)} or newer)")
    table.append(f"const char flurka_kernel_build_info[] = \"{info}\";\n")
    (out / "flurka_kernels.c").write_text("\n".join(table))
    manifest = {"archs": list(archs), "ptx_arch": ptx_arch(archs), "ptx_version": ptx_version,
                "min_driver": min_driver(ptx_version), "build_info": info, "images": manifest_images,
                "headers": ["flurka_attention_launch.h", "flurka_kernels.h"],
                "files": ["flurka_attention_launch.c", "flurka_kernels.c", *sorted(data)]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def build_kernels(out_dir: str | os.PathLike[str], archs: Sequence[int] = DEFAULT_ARCHS, *,
                  feature_maps: Iterable[str] = FEATURE_MAPS, dtypes: Iterable[str] = DTYPES,
                  head_dims: Iterable[int] = HEAD_DIMS, value_dims: Iterable[int] | None = None,
                  jobs: int | None = None, log: Any = None) -> dict[str, Any]:
    """Compile the specialisations for `archs` and write the C sources into out_dir; returns the manifest."""
    archs = sorted(set(int(a) for a in archs))
    if not archs:
        raise ValueError("no --arch given")
    for a in archs:
        if a < 80:
            raise ValueError(f"arch {a} is not supported (Triton targets sm_80 and newer); allowed: 80 and up")
    feature_maps = tuple(feature_maps)
    for fm in feature_maps:
        get(fm)  # ValueError naming the allowed maps
    dtypes = tuple(dtypes)
    for dt in dtypes:
        if dt not in DTYPES:
            raise ValueError(f"unknown dtype {dt!r}; allowed: {', '.join(DTYPES)}")
    for hd in tuple(head_dims) + tuple(value_dims or ()):
        if hd not in HEAD_DIMS:
            raise ValueError(f"head dim {hd} not supported; allowed: {', '.join(map(str, HEAD_DIMS))}")
    specs = all_specs(feature_maps, dtypes, head_dims, value_dims)
    results = compile_all(specs, archs, jobs=jobs, log=log)
    return write_sources(results, out_dir, archs)


def find_cuda_include() -> Path | None:
    """A directory holding the CUDA driver API's cuda.h: $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, nvcc's
    toolkit, then the copy bundled with triton. (Not /usr/include/linux/cuda.h: that is the Coda file system's.)"""
    import shutil

    candidates: list[Path] = []
    for var in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]) / "include")
    candidates.append(Path("/usr/local/cuda/include"))
    nvcc = shutil.which("nvcc")
    if nvcc:
        real = Path(nvcc).resolve()
        candidates.append(real.parent.parent / "include")
        try:  # a wrapper script: look for the toolkit path it names
            text = real.read_text(errors="ignore")[:4096]
            for m in re.finditer(r"(/[\w./-]+)/bin/nvcc", text):
                candidates.append(Path(m.group(1)) / "include")
        except OSError:
            pass
    candidates.extend(sorted(Path("/usr/local").glob("cuda-*/include"), reverse=True))
    try:
        import triton

        candidates.append(Path(triton.__file__).parent / "backends" / "nvidia" / "include")
    except ImportError:
        pass
    for c in candidates:
        header = c / "cuda.h"
        if header.is_file() and "cuLaunchKernel" in header.read_text(errors="ignore"):
            return c
    return None
