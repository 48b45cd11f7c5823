"""Compile the plugin against TensorRT's headers (set TENSORRT_INCLUDE_DIR); CI has none and skips."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.trt.fake_kernels import write_fake_kernels

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
INCLUDE = os.environ.get("TENSORRT_INCLUDE_DIR")

pytestmark = [
    pytest.mark.skipif(not INCLUDE or not (Path(INCLUDE) / "NvInferRuntime.h").is_file(),
                       reason="TensorRT headers not available: set TENSORRT_INCLUDE_DIR to TensorRT's include/"),
    pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed"),
]


def test_plugin_compiles_without_warnings(tmp_path):
    build = tmp_path / "build"
    cfg = subprocess.run(["cmake", "-S", str(PLUGINS), "-B", str(build), "-DFLURKA_CHECK_ONLY=ON",
                          f"-DTensorRT_INCLUDE_DIR={INCLUDE}", "-DFLURKA_WERROR=ON"],
                         capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    out = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "warning:" not in out.stdout + out.stderr
    def symbols(name: str, *flags: str) -> str:
        lib = next(build.rglob(name))
        return subprocess.run(["nm", "-D", *flags, str(lib)], capture_output=True, text=True).stdout

    # The loadLibrary variant exports the two entry points and needs nothing from libnvinfer.
    dynamic = symbols("libflurka_trt_plugin_check.so", "--defined-only")
    for name in ("getCreators", "setLoggerFinder"):
        assert f" T {name}" in dynamic
    undefined = symbols("libflurka_trt_plugin_check.so", "--undefined-only")
    assert "getPluginRegistry" not in undefined and "getLogger" not in undefined
    # The self-registering variant exports no getCreators (loadLibrary must not take it) and uses the registry.
    assert " T getCreators" not in symbols("libflurka_trt_plugin_static_check.so", "--defined-only")
    assert "getPluginRegistry" in symbols("libflurka_trt_plugin_static_check.so", "--undefined-only")


@pytest.mark.slow
def test_full_build_needs_no_driver(tmp_path):
    """A full build (kernels, not the check-only one) as image builds and CI machines do it: the CUDA toolkit and
    TensorRT's headers, no NVIDIA driver, often no stubs/libcuda.so (this machine). libflurka_trt_plugin.so builds
    -Werror clean and needs neither libnvinfer nor libcuda: the launcher opens the driver when first used."""
    kernels = tmp_path / "kernels"
    write_fake_kernels(kernels)
    build = tmp_path / "build"
    cfg = subprocess.run(["cmake", "-S", str(PLUGINS), "-B", str(build), f"-DTensorRT_INCLUDE_DIR={INCLUDE}",
                          f"-DFLURKA_KERNELS_DIR={kernels}", "-DFLURKA_WERROR=ON"], capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stdout[-4000:] + cfg.stderr[-4000:]
    out = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "warning:" not in out.stdout + out.stderr
    lib = build / "libflurka_trt_plugin.so"
    assert lib.is_file()
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf is not installed")
    dynamic = subprocess.run([readelf, "-d", str(lib)], capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    assert needed and not any(n.startswith(("libnvinfer", "libcuda")) for n in needed), needed
    undefined = subprocess.run(["nm", "-D", "--undefined-only", str(lib)], capture_output=True, text=True).stdout
    assert not re.search(r"\bcu[A-Z]\w*", undefined), undefined  # no driver function left for the loader to bind
