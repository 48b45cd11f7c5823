"""How a Triton server gets the FlurkaAttention plugin for a TensorRT plan.

Triton's TensorRT backend loads plugin libraries with dlopen only (`--backend-config=tensorrt,plugins=...`, or
LD_PRELOAD), so the server needs the self-registering libflurka_trt_plugin_static.so. A plan built with
`build-engine --version-compatible` carries libflurka_trt_plugin.so inside (its build info says so): then no
library is copied, and the backend must allow the plan's host code (`version-compatible=true`).
"""

from __future__ import annotations

from pathlib import Path

from ..trt.build_info import read_build_info
from ..trt.plugin import LIBRARY_NAME, STATIC_LIBRARY_NAME


class PlanPluginError(ValueError):
    pass


def resolve_plan_plugin(plan: Path, plugin: Path | None) -> tuple[Path | None, bool]:
    """(the library to copy beside the model or None, whether the plan carries its plugin library)."""
    try:
        info = read_build_info(plan)
    except ValueError as e:
        raise PlanPluginError(str(e)) from None
    if info is not None and info.plugin_serialized:
        return None, True  # loading a second copy would register the creator twice
    if plugin is not None and plugin.name == LIBRARY_NAME:
        static = plugin.with_name(STATIC_LIBRARY_NAME)
        if not static.is_file():
            raise PlanPluginError(
                f"Triton's TensorRT backend loads plugins with dlopen only, which needs {STATIC_LIBRARY_NAME}; it is "
                f"not beside {plugin} (build it with `flurka-export build-plugin`), or rebuild the engine with "
                "`build-engine --version-compatible` to carry the plugin inside the plan")
        plugin = static
    return plugin, False


def serialized_plugin_readme(repo_abs: Path) -> list[str]:
    """README lines for a plan that carries its plugin library."""
    return ["", "The plan carries the FlurkaAttention plugin library (built with `flurka-export build-engine "
            "--version-compatible`): there is no plugin file to load and no LD_PRELOAD. TensorRT runs host code "
            "from such plans only when allowed, so start the server with the TensorRT backend's version-compatible "
            "option:", "", "```sh",
            f"tritonserver --model-repository={repo_abs} --backend-config=tensorrt,version-compatible=true", "```",
            "", "In the Triton container:", "", "```sh",
            f"docker run --gpus all --rm -p8000:8000 -p8001:8001 -p8002:8002 -v {repo_abs}:/models \\",
            "    nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models \\",
            "    --backend-config=tensorrt,version-compatible=true", "```"]
