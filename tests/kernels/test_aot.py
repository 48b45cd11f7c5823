"""Ahead-of-time build: `flurka-export build-kernels` for one arch and a subset of specialisations, the
table it writes, and the generated C launcher compiled with gcc against cuda.h (no GPU needed)."""

import json
import re
import shutil
import subprocess

import pytest

from flurka_export.cli.main import main
from flurka_export.kernels.aot import all_specs, find_cuda_include
from flurka_export.kernels.launch import NEEDS_KEY_MAX
from flurka_export.ops.feature_maps import FEATURE_MAPS

pytest.importorskip("triton")

# The C API the TensorRT plugin codes against: enum values and attribute fields may only be appended (a new
# feature map adds its own), never renumbered or reordered, so these are prefixes.
API = [
    "typedef enum { FLURKA_DTYPE_FP32 = 0, FLURKA_DTYPE_FP16 = 1, FLURKA_DTYPE_BF16 = 2 } flurka_dtype_t;",
    "typedef enum { FLURKA_FMAP_RELU = 0, FLURKA_FMAP_ELU = 1, FLURKA_FMAP_RFA = 2, FLURKA_FMAP_FAVOR = 3, "
    "FLURKA_FMAP_DPFP = 4",
    "size_t flurka_attention_workspace_size(const flurka_attention_params_t* p);",
    "int flurka_attention_supported(const flurka_attention_params_t* p);",
    "const char* flurka_attention_error_string(int code);",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("aot")
    rc = main(["build-kernels", "--arch", "90", "-o", str(out), "--feature-maps", "relu,favor,dpfp", "--dtypes", "fp16",
               "--head-dims", "64", "--value-dims", "64,32", "-j", "1", "-q"])
    assert rc == 0
    return out


def test_launch_metadata_refuses_what_the_launcher_cannot_do():
    from types import SimpleNamespace

    from flurka_export.kernels.aot import check_launch_metadata

    ok = dict(num_ctas=1, launch_pdl=False, launch_cooperative_grid=False, tensordesc_meta=[], global_scratch_size=0,
              profile_scratch_size=0, tmem_size=0)
    check_launch_metadata(SimpleNamespace(**ok), "k")
    for bad, word in ((dict(num_ctas=2), "num_ctas=2"), (dict(launch_pdl=True), "launch_pdl"),
                      (dict(launch_cooperative_grid=True), "cooperative"), (dict(tensordesc_meta=[{}]), "descriptors"),
                      (dict(global_scratch_size=64), "global_scratch_size=64")):
        with pytest.raises(RuntimeError, match=word):
            check_launch_metadata(SimpleNamespace(**{**ok, **bad}), "k")


def test_full_specialisation_count():
    specs = all_specs()
    # every feature map x 3 dtypes x 3 d x 3 dv for kv_state and query_out, + the key-max kernel per dtype and d
    # for the maps that need it (favor).
    assert len(specs) == len(FEATURE_MAPS) * 3 * 3 * 3 * 2 + len(NEEDS_KEY_MAX) * 3 * 3
    assert len(set(specs)) == len(specs)


def test_table_covers_the_requested_specialisations(built):
    manifest = json.loads((built / "manifest.json").read_text())
    # sm_90a PTX is arch-specific: the embedded PTX is compiled for sm_80, which every newer GPU can JIT.
    assert manifest["archs"] == [90] and manifest["ptx_arch"] == 80
    assert {(i["arch"], i["format"]) for i in manifest["images"]} == {(90, "cubin"), (80, "ptx")}
    assert re.fullmatch(r"\d+\.\d+", manifest["ptx_version"]) and "CUDA" in manifest["min_driver"]
    have = {(i["kind"], i["feature_map"], i["dtype"], i["d"], i["dv"], i["format"]) for i in manifest["images"]}
    want = set()
    for fmt in ("cubin", "ptx"):
        want.add(("favor_key_max", "favor", "fp16", 64, 0, fmt))
        for fm in ("relu", "favor", "dpfp"):
            for dv in (64, 32):
                want |= {("kv_state", fm, "fp16", 64, dv, fmt), ("query_out", fm, "fp16", 64, dv, fmt)}
    assert have == want
    for im in manifest["images"]:
        assert im["num_warps"] == 4 and im["shared"] <= 232448 and im["bytes"] > 1000
        assert im["num_params"] == {"favor_key_max": 6, "kv_state": 10, "query_out": 10}[im["kind"]] + 2
    table = (built / "flurka_kernels.c").read_text()
    assert table.count('"query_out"') == 12 and f"flurka_kernel_image_count = {len(have)};" in table
    assert manifest["files"] == ["flurka_attention_launch.c", "flurka_kernels.c", "flurka_kernels_ptx_sm80.c",
                                 "flurka_kernels_sm90.c"]
    words = re.findall(r"0x([0-9a-f]{16})ull", (built / "flurka_kernels_ptx_sm80.c").read_text())
    ptx = b"".join(int(w, 16).to_bytes(8, "little") for w in words).decode("latin-1")
    assert ".target sm_80" in ptx and "sm_90a" not in ptx
    assert sorted(p.name for p in built.glob("*.c")) == sorted(manifest["files"])


def test_header_has_the_plugin_api(built):
    header = re.sub(r"\s+", " ", (built / "flurka_attention_launch.h").read_text())
    for line in API:
        assert re.sub(r"\s+", " ", line) in header
    assert "int flurka_attention_launch(const flurka_attention_params_t* p, const void* query, const void* key, " \
           "const void* value, const void* feature_proj, void* output, void* workspace, size_t workspace_size, " \
           "CUstream stream);" in header
    assert "int batch, num_heads, q_len, kv_len, head_dim, value_dim, num_proj; flurka_dtype_t dtype; " \
           "flurka_feature_map_t feature_map; float stabilizer; float eps; int nu;" in header
    # Only cuda.h (plus the C library) is needed.
    for f in [p.name for p in built.glob("*.[ch]")]:
        includes = set(re.findall(r'#include [<"]([^>"]+)[>"]', (built / f).read_text()))
        assert includes <= {"cuda.h", "stddef.h", "stdint.h", "stdio.h", "stdlib.h", "string.h", "pthread.h", "dlfcn.h",
                            "windows.h", "flurka_attention_launch.h", "flurka_kernels.h"}, includes


def test_generated_c_compiles(built, tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler (gcc/cc) on PATH")
    include = find_cuda_include()
    if include is None:
        pytest.skip("no CUDA headers (cuda.h) found: set CUDA_HOME, or install the CUDA toolkit")
    for src in json.loads((built / "manifest.json").read_text())["files"]:
        cmd = [cc, "-c", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", f"-I{include}", str(built / src),
               "-o", str(tmp_path / (src + ".o"))]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    # C++ (the TensorRT plugin) includes the header too.
    cxx = shutil.which("g++")
    if cxx:
        (tmp_path / "use.cpp").write_text('#include "flurka_attention_launch.h"\nint f() { return FLURKA_OK; }\n')
        r = subprocess.run([cxx, "-c", f"-I{include}", f"-I{built}", str(tmp_path / "use.cpp"), "-o",
                            str(tmp_path / "use.o")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    # Undefined symbols of the launcher: the kernel table, libc, pthread and dlopen; no cu* driver function (the
    # driver is opened at run time, so the launcher links where only the toolkit's headers are).
    nm = shutil.which("nm")
    if nm:
        out = subprocess.run([nm, "-u", str(tmp_path / "flurka_attention_launch.c.o")], capture_output=True,
                             text=True).stdout
        undefined = {line.split()[-1] for line in out.splitlines() if line.strip()}
        libc = {"malloc", "free", "getenv", "snprintf", "memcpy", "pthread_mutex_lock", "pthread_mutex_unlock",
                "pthread_once", "dlopen", "dlsym", "dlerror"}
        assert all(s.startswith("flurka_kernel_") or s in libc or s.startswith("_") for s in undefined), undefined
        assert {"dlopen", "dlsym"} <= undefined, undefined
