"""Host-side C++ tests of the plugin (plugins/tests, ctest) under AddressSanitizer and UBSan, no GPU needed.

launcher_tests (the generated launcher against a fake CUDA driver, which it opens as it opens the real one: dlopen and
cuGetProcAddress_v2, pointed at the fake by FLURKA_CUDA_DRIVER_LIBRARY) needs cmake, a C/C++ compiler and cuda.h, and
runs in CI. plugin_tests and loader_tests also need TensorRT's C++ headers: set TENSORRT_INCLUDE_DIR to TensorRT's include/.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flurka_export.kernels.aot import find_cuda_include
from tests.trt.fake_kernels import write_fake_kernels

TESTS = Path(__file__).resolve().parents[2] / "plugins" / "tests"
TRT_INCLUDE = os.environ.get("TENSORRT_INCLUDE_DIR")
HAVE_TRT = bool(TRT_INCLUDE) and (Path(TRT_INCLUDE) / "NvInferRuntime.h").is_file()
CUDA_INCLUDE = find_cuda_include()

pytestmark = [
    pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ctest") is None, reason="cmake is not installed"),
    pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="no C++ compiler on PATH"),
    pytest.mark.skipif(CUDA_INCLUDE is None, reason="no CUDA headers (cuda.h): set CUDA_HOME or install the toolkit"),
]


def _sanitizers_work(tmp: Path) -> bool:
    """ASan and UBSan need their runtime libraries (and ptrace for the leak check): probe with a tiny program."""
    cxx = shutil.which("g++") or shutil.which("c++")
    (tmp / "probe.cpp").write_text("int main() { return 0; }\n")
    built = subprocess.run([cxx, "-fsanitize=address,undefined", str(tmp / "probe.cpp"), "-o", str(tmp / "probe")],
                           capture_output=True)
    return built.returncode == 0 and subprocess.run([str(tmp / "probe")], capture_output=True).returncode == 0


def _build_and_test(tmp: Path, trt_include: str | None) -> tuple[Path, dict[str, int]]:
    kernels = tmp / "kernels"
    write_fake_kernels(kernels)
    build = tmp / "build"
    sanitize = "ON" if _sanitizers_work(tmp) else "OFF"
    cmd = ["cmake", "-S", str(TESTS), "-B", str(build), f"-DFLURKA_KERNELS_DIR={kernels}",
           f"-DCUDA_INCLUDE_DIR={CUDA_INCLUDE}", f"-DFLURKA_SANITIZE={sanitize}"]
    cmd += [f"-DTensorRT_INCLUDE_DIR={trt_include}"] if trt_include else []
    for step in (cmd, ["cmake", "--build", str(build), "-j", "2"]):
        r = subprocess.run(step, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure", "-V"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    counts = {name: int(n) for name, n, failed in re.findall(r"(\w+_tests): (\d+) checks, (\d+) failed", r.stdout)
              if failed == "0"}
    return build, counts


def test_launcher_against_fake_driver(tmp_path):
    _, counts = _build_and_test(tmp_path, None)
    assert counts.get("launcher_tests", 0) >= 100, counts
    # The same launcher with no driver library, and with one older than CUDA 12.0 (test_driver.cpp).
    assert counts.get("launcher_no_driver_tests", 0) >= 5 and counts.get("launcher_old_driver_tests", 0) >= 5, counts


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TRT, reason="TensorRT headers not available: set TENSORRT_INCLUDE_DIR to TensorRT's include/")
def test_plugin_and_loaders(tmp_path):
    build, counts = _build_and_test(tmp_path, TRT_INCLUDE)
    assert counts.get("plugin_tests", 0) >= 2000 and counts.get("loader_tests", 0) >= 15, counts
    assert counts.get("plugin_no_driver_tests", 0) >= 5, counts
    # The loadLibrary variant uses TensorRT at compile time only; the self-registering one links libnvinfer; neither
    # links the CUDA driver (the launcher opens it at run time).
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf is not installed")
    needed = {}
    for name in ("libflurka_trt_plugin.so", "libflurka_trt_plugin_static.so"):
        out = subprocess.run([readelf, "-d", str(build / "plugin" / name)], capture_output=True, text=True).stdout
        needed[name] = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    assert not any(lib.startswith("libnvinfer") for lib in needed["libflurka_trt_plugin.so"]), needed
    assert not any(lib.startswith("libcuda") for libs in needed.values() for lib in libs), needed
    assert any(lib.startswith("libnvinfer") for lib in needed["libflurka_trt_plugin_static.so"]), needed
