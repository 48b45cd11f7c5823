"""`flurka-export build-plugin` names why a step failed: the first CMake (or compiler) error, not only the command."""

import shutil
import sys

import pytest

from flurka_export.cli.build_plugin import PLUGIN_SOURCE, first_error, run_step
from flurka_export.cli.main import CommandError

# What CMake printed on a machine without libcuda before the plugin stopped linking it.
CMAKE_OUTPUT = """-- The C compiler identification is GNU 12.2.0
-- Configuring done
CMake Error at CMakeLists.txt:110 (target_link_libraries):
  Target "flurka_trt_plugin" links to:

    CUDA::cuda_driver

  but the target was not found.

CMake Error at CMakeLists.txt:120 (target_link_libraries):
  Target "flurka_trt_plugin_static" links to:
-- Generating done
CMake Generate step failed.  Build files cannot be regenerated correctly.
"""


def test_first_error_of_cmake_and_compilers():
    assert first_error(CMAKE_OUTPUT) == ('CMake Error at CMakeLists.txt:110 (target_link_libraries): Target '
                                         '"flurka_trt_plugin" links to: CUDA::cuda_driver but the target was not found.')
    assert first_error("CMake Error: The source directory \"/x\" does not exist.\n") == \
        'CMake Error: The source directory "/x" does not exist.'
    compiler = "[ 50%] Building CXX object a.o\n/s/a.cpp:3:1: error: 'x' was not declared\ncollect2: error: ld\n"
    assert first_error(compiler) == "/s/a.cpp:3:1: error: 'x' was not declared"
    assert first_error("/usr/bin/ld: a.o: undefined reference to `cuInit'\n").endswith("undefined reference to `cuInit'")
    assert first_error("all good\n") is None
    assert len(first_error("CMake Error at X:1 (m):\n" + "  word\n" * 500)) == 400


def test_failed_step_shows_its_first_error(tmp_path, capsys):
    """A real failing configure of the plugin (TensorRT headers but no kernels): the reason is in the exception."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    (tmp_path / "trt").mkdir()
    (tmp_path / "trt" / "NvInferRuntime.h").write_text("")
    (tmp_path / "kernels").mkdir()
    cmd = ["cmake", "-S", str(PLUGIN_SOURCE), "-B", str(tmp_path / "b"), f"-DTensorRT_INCLUDE_DIR={tmp_path / 'trt'}",
           f"-DFLURKA_KERNELS_DIR={tmp_path / 'kernels'}"]
    with pytest.raises(CommandError) as e:
        run_step(cmd)
    message = str(e.value)
    assert message.startswith(f"step failed: cmake -S {PLUGIN_SOURCE} -B ...: CMake Error at CMakeLists.txt:")
    assert "\n" not in message
    # Without the CUDA toolkit CMake stops earlier, at find_package(CUDAToolkit): still its own reason.
    assert "holds no flurka_attention_launch.h" in message or "CUDAToolkit" in message, message
    assert "CMake Error" in capsys.readouterr().out  # the step's output is still shown as it runs


def test_failed_step_without_error_line(capsys):
    with pytest.raises(CommandError, match=r"step failed: .* \.\.\.: exit status 3, see the output above"):
        run_step([sys.executable, "-c", "print('quiet'); raise SystemExit(3)"])
    assert "quiet" in capsys.readouterr().out
