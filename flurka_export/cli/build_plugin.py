"""`flurka-export build-plugin -o build/`: ahead-of-time kernels + CMake -> libflurka_trt_plugin.so (loaded by
TensorRT's registry) and libflurka_trt_plugin_static.so (registers itself when dlopened)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .common import add_command, add_overwrite, int_list, positive_int
from .main import CommandError


def arch_list(text: str) -> str:
    """`type=` for --arch: checked as integers now, passed on as written to build-kernels."""
    if not int_list(text):
        raise argparse.ArgumentTypeError("no architectures given")
    return text

PLUGIN_SOURCE = Path(__file__).resolve().parents[2] / "plugins"
HEADER = "NvInferRuntime.h"


def _tensorrt_include(root: str | None) -> Path:
    candidates = []
    for base in filter(None, (root, os.environ.get("TensorRT_ROOT"), os.environ.get("TENSORRT_ROOT"))):
        candidates += [Path(base) / "include", Path(base)]
    candidates += [Path("/usr/include/x86_64-linux-gnu"), Path("/usr/include/aarch64-linux-gnu"), Path("/usr/include")]
    for c in candidates:
        if (c / HEADER).is_file():
            return c
    raise CommandError(
        f"TensorRT's C++ headers ({HEADER}) were not found (looked in {', '.join(map(str, candidates))}); install "
        "TensorRT 10.9 or newer (tar package or libnvinfer-dev) and pass --tensorrt-root DIR or set TensorRT_ROOT"
    )


def first_error(output: str) -> str | None:
    """The first error in a CMake or build step's output, on one line: "CMake Error ...:" with the indented message
    under it, or a compiler's or linker's error line; None when there is none."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("CMake Error"):
            body = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and not nxt[:1].isspace():
                    break
                body.append(nxt.strip())
            text = re.sub(r"\s+", " ", " ".join([line.strip(), *body])).strip()
            return text if len(text) <= 400 else text[:397] + "..."
    for pattern in (r"\b(fatal )?error:", r"undefined reference to", r"\*\*\* .*Error \d+"):
        for line in lines:
            if re.search(pattern, line):
                return line.strip()
    return None


def run_step(cmd: list[str]) -> None:
    """Run one step, echoing its output as it comes; if it fails, raise with the command and its first error."""
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        seen.append(line)
    if proc.wait() != 0:
        why = first_error("".join(seen)) or f"exit status {proc.returncode}, see the output above"
        raise CommandError(f"step failed: {' '.join(cmd[:4])} ...: {why}")


def run(args: argparse.Namespace) -> int:
    if not PLUGIN_SOURCE.is_dir():
        raise CommandError(f"the plugin sources are not here ({PLUGIN_SOURCE}); run build-plugin from a source checkout")
    if shutil.which("cmake") is None:
        raise CommandError("cmake is not on PATH; install CMake 3.18 or newer")
    from ..utils import check_output_dir

    include = _tensorrt_include(args.tensorrt_root)
    check_output_dir(args.output, overwrite=args.overwrite, what="build directory",
                     writes=("kernels/", "cmake/", "libflurka_trt_plugin.so"))
    out = Path(args.output).resolve()
    kernels = out / "kernels"
    exe = shutil.which("flurka-export") or sys.argv[0]
    steps = [
        [sys.executable, "-m", "flurka_export", "build-kernels", "--arch", args.arch, "-o", str(kernels),
         "--overwrite"],
        ["cmake", "-S", str(PLUGIN_SOURCE), "-B", str(out / "cmake"), f"-DTensorRT_ROOT={include.parent}",
         f"-DTensorRT_INCLUDE_DIR={include}", f"-DFLURKA_KERNELS_DIR={kernels}", f"-DFLURKA_EXPORT_EXECUTABLE={exe}"]
        + ([f"-DTensorRT_LIBRARY_DIR={args.tensorrt_lib}"] if args.tensorrt_lib else []),
        ["cmake", "--build", str(out / "cmake"), "-j", str(args.jobs)],
    ]
    for cmd in steps:
        run_step(cmd)
    built = []
    for name in ("libflurka_trt_plugin.so", "libflurka_trt_plugin_static.so"):
        lib = out / "cmake" / name
        if lib.is_file():  # the static variant exists only when CMake found libnvinfer
            shutil.copy2(lib, out / name)
            built.append(str(out / name))
    print(f"built {' and '.join(built)}: give libflurka_trt_plugin.so to flurka-export, IPluginRegistry.load_library "
          "and trtexec --dynamicPlugins; libflurka_trt_plugin_static.so to Polygraphy --plugins, "
          "trtexec --staticPlugins and Triton")
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "build-plugin", run, "compile the kernels ahead of time and build the TensorRT plugin library")
    p.add_argument("-o", "--output", default="build", help="build directory (default ./build)")
    p.add_argument("--arch", type=arch_list, default="80,86,89,90", help="SM architectures (default 80,86,89,90)")
    p.add_argument("--tensorrt-root", help="TensorRT install directory (include/ and lib/)")
    p.add_argument("--tensorrt-lib", help="directory of libnvinfer.so if not under the root")
    p.add_argument("-j", "--jobs", type=positive_int, default=os.cpu_count() or 2)
    add_overwrite(p)
