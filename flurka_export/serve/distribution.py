"""Find the Triton Inference Server that the `nvidia-pytriton` wheel ships, and prepare its Python backend.

The wheel holds `tritonserver` (bin/), the Python backend (backends/python/) and one backend stub per
Python version (python_backend_stubs/3.X/). Triton looks for the stub beside the backend library, so we lay
out a backend directory of symbolic links in a workspace, with the stub of the running Python. Only the
files are used: pytriton's own Python API (and its numpy<2 pin) is not needed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

INSTALL_HINT = "pip install 'flurka-export[serve]' (the nvidia-pytriton wheel ships tritonserver)"


class ServerNotFound(ImportError):
    """The Triton server binary is not installed: printed as one line by the CLI."""


@dataclasses.dataclass
class TritonDistribution:
    root: Path  # .../pytriton/tritonserver
    libs: Path  # the wheel's bundled shared libraries

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    def stub(self) -> Path:
        return self.root / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}" \
            / "triton_python_backend_stub"


def find_distribution() -> TritonDistribution:
    """The tritonserver of the installed nvidia-pytriton wheel (without importing pytriton)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServerNotFound(f"serving needs the Triton Inference Server binary: {INSTALL_HINT}")
    package = Path(next(iter(spec.submodule_search_locations)))
    dist = TritonDistribution(package / "tritonserver", package.parent / "nvidia_pytriton.libs")
    if not dist.binary.is_file():
        raise ServerNotFound(f"{dist.binary} is missing (a source or partial install of nvidia-pytriton?): "
                             f"{INSTALL_HINT}")
    if not dist.stub().is_file():
        have = sorted(p.name for p in (dist.root / "python_backend_stubs").glob("3.*"))
        raise ServerNotFound(f"nvidia-pytriton has no Python backend stub for Python "
                             f"{sys.version_info[0]}.{sys.version_info[1]} (it has {', '.join(have) or 'none'})")
    return dist


def prepare_backends(dist: TritonDistribution, workspace: Path) -> Path:
    """workspace/backends/python: links to the backend library, its Python utilities and our Python's stub."""
    python_dir = workspace / "backends" / "python"
    python_dir.mkdir(parents=True)
    backend = dist.root / "backends" / "python"
    for f in ("libtriton_python.so", "triton_python_backend_utils.py"):
        os.symlink(backend / f, python_dir / f)
    os.symlink(dist.stub(), python_dir / "triton_python_backend_stub")
    return python_dir.parent


def server_env(dist: TritonDistribution) -> dict[str, str]:
    """The server's environment. The stub embeds libpython and takes its prefix (hence site-packages: numpy,
    onnxruntime) from the `python3` found on PATH, so this interpreter's bin directory goes first."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    libdirs = [str(dist.libs), sysconfig.get_config_var("LIBDIR") or ""]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([d for d in libdirs if d] + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    return env
