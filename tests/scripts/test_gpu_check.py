"""scripts/gpu_check.sh without a CUDA torch stops at once: one line on stderr, exit 1, nothing created."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run(python, out_dir, extra_env=None):
    env = {**os.environ, "PYTHON": python, **(extra_env or {})}
    return subprocess.run(["bash", str(SCRIPT), str(out_dir)], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible: the script would run its checks")
@pytest.mark.parametrize("python,why", [
    (sys.executable, "CPU-only build" if torch.version.cuda is None else "sees no GPU"),
    (f"{sys.executable} -S", "no PyTorch (ModuleNotFoundError: No module named 'torch')"),  # no site-packages
    ("no-such-python", "no Python interpreter 'no-such-python'"),
])
def test_without_cuda_torch_one_line_and_exit_1(python, why, tmp_path):
    proc = run(python, tmp_path / "gpu")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: ") and why in lines[0], proc.stderr
    assert proc.stdout == "" and "PASS" not in proc.stderr
    assert not (tmp_path / "gpu").exists()


FAKE_TORCH = '''
import sys
sys.stderr.write("UserWarning: Failed to initialize NumPy\\n")  # what torch prints without numpy
__version__ = "2.11.0+cu130"
class version: cuda = "13.0"
class cuda:
    @staticmethod
    def is_available(): return True
'''


def test_a_cuda_torch_passes_the_preflight(tmp_path):
    # The GPU machine: torch with CUDA and Triton, maybe no numpy (torch then warns on stderr). The preflight must
    # let it through; the steps then run (and fail here, on a fake torch, each with its own FAIL line).
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "torch.py").write_text(FAKE_TORCH)
    (fake / "triton.py").write_text("__version__ = '3.6.0'\n")
    proc = run(f"{sys.executable} -S", tmp_path / "gpu", {"PYTHONPATH": str(fake)})
    assert "=================== environment" in proc.stdout, proc.stderr
    assert "FAIL numerics" in proc.stdout and proc.returncode == 1
    assert (tmp_path / "gpu").is_dir()
