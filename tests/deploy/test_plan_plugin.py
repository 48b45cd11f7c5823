"""deploy triton and the plugin of a plan: the self-registering library for Triton's dlopen, or nothing when the
plan carries its plugin library (version-compatible build, recorded in the plan's build info)."""

import pytest

from flurka_export.deploy.plan_plugin import PlanPluginError, resolve_plan_plugin
from flurka_export.deploy.triton import deploy_triton
from flurka_export.export import export_onnx
from flurka_export.models import build_model
from flurka_export.trt.build_info import BuildInfo, write_build_info
from tests.helpers import tiny_config


@pytest.fixture
def plan_and_onnx(tmp_path):
    onnx_path = export_onnx(build_model(tiny_config()), tmp_path / "m.onnx")
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    return plan, onnx_path


def test_serialized_plugin_needs_no_library(plan_and_onnx, tmp_path):
    plan, onnx_path = plan_and_onnx
    write_build_info(plan, BuildInfo(tensorrt="11.1.0", version_compatible=True, plugin_serialized=True,
                                     plugin="libflurka_trt_plugin.so"))
    lib = tmp_path / "libflurka_trt_plugin.so"
    lib.write_bytes(b"\x7fELF")
    assert resolve_plan_plugin(plan, lib) == (None, True)
    out = deploy_triton(plan, tmp_path / "repo", "eng", plugin=lib, onnx_path=onnx_path)
    assert not any(p.suffix == ".so" for p in out.iterdir())
    readme = (out / "README.md").read_text()
    assert "--backend-config=tensorrt,version-compatible=true" in readme and "LD_PRELOAD=" not in readme


def test_loadlibrary_variant_is_swapped_for_the_static_one(plan_and_onnx, tmp_path):
    plan, onnx_path = plan_and_onnx
    lib = tmp_path / "libflurka_trt_plugin.so"
    lib.write_bytes(b"\x7fELF")
    with pytest.raises(PlanPluginError, match="needs libflurka_trt_plugin_static.so"):
        resolve_plan_plugin(plan, lib)
    (tmp_path / "libflurka_trt_plugin_static.so").write_bytes(b"\x7fELF")
    assert resolve_plan_plugin(plan, lib) == (tmp_path / "libflurka_trt_plugin_static.so", False)
    out = deploy_triton(plan, tmp_path / "repo", "eng", plugin=lib, onnx_path=onnx_path)
    assert (out / "libflurka_trt_plugin_static.so").is_file()
    assert "LD_PRELOAD=" in (out / "README.md").read_text()
