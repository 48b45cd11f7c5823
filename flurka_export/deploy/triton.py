"""A Triton Inference Server model repository for an exported ONNX model or a TensorRT plan.

Layout: REPO/NAME/config.pbtxt, REPO/NAME/1/model.onnx (+ external data) or REPO/NAME/1/model.plan
(+ the plugin library in REPO/NAME/), and REPO/README.md with the server command.
config.pbtxt is written as text by hand so that generating it needs no tritonclient; the tests parse it
with Triton's own model_config.proto schema.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import onnx

from ..utils import atomic_path

PLUGIN_NAME = "libflurka_trt_plugin.so"

# ONNX element type -> Triton data type.
_ONNX_TO_TRITON = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.BFLOAT16: "TYPE_BF16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}
# TensorRT DataType name -> Triton data type.
_TRT_TO_TRITON = {"FLOAT": "TYPE_FP32", "HALF": "TYPE_FP16", "BF16": "TYPE_BF16", "INT64": "TYPE_INT64",
                  "INT32": "TYPE_INT32", "INT8": "TYPE_INT8", "UINT8": "TYPE_UINT8", "BOOL": "TYPE_BOOL"}


class DeployError(ValueError):
    """Bad deploy request: printed as one sentence by the CLI."""


@dataclasses.dataclass
class TensorSpec:
    name: str
    data_type: str  # Triton TYPE_*
    dims: list[int]  # full shape, -1 for dynamic


def onnx_io(path: str | os.PathLike) -> tuple[list[TensorSpec], list[TensorSpec], bool]:
    """Inputs and outputs of an ONNX file (weights not loaded), and whether it has FlurkaAttention nodes."""
    from ..onnx_io import load_onnx
    from ..ops.schema import OP_DOMAIN, OP_NAME

    model = load_onnx(path, load_external_data=False)
    inits = {t.name for t in model.graph.initializer}

    def spec(vi: onnx.ValueInfoProto) -> TensorSpec:
        tt = vi.type.tensor_type
        if tt.elem_type not in _ONNX_TO_TRITON:
            raise DeployError(f"{vi.name} has ONNX type {onnx.TensorProto.DataType.Name(tt.elem_type)}, "
                              "which Triton does not support")
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        return TensorSpec(vi.name, _ONNX_TO_TRITON[tt.elem_type], dims)

    inputs = [spec(i) for i in model.graph.input if i.name not in inits]
    outputs = [spec(o) for o in model.graph.output]
    has_flurka = any(n.domain == OP_DOMAIN and n.op_type == OP_NAME for n in model.graph.node)
    return inputs, outputs, has_flurka


def _onnx_external_files(path: Path) -> list[str]:
    from ..onnx_io import load_onnx

    model = load_onnx(path, load_external_data=False)
    files = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
    for f in sorted(files):
        if not (path.parent / f).is_file():
            raise DeployError(f"{path} refers to external data {f}, which is not beside it")
    return sorted(files)


def plan_io(path: str | os.PathLike, plugin: str | os.PathLike | None) -> tuple[list[TensorSpec], list[TensorSpec], str]:
    """Inputs and outputs of a TensorRT engine (needs TensorRT; the plugin is loaded to deserialize it)."""
    from ..trt import import_tensorrt
    from ..trt.plugin import load_plugin

    trt = import_tensorrt()
    if plugin:
        load_plugin(plugin)  # registers FlurkaAttention, so the engine deserializes
    logger = trt.Logger(trt.Logger.ERROR)
    engine = trt.Runtime(logger).deserialize_cuda_engine(Path(path).read_bytes())
    if engine is None:
        raise DeployError(f"TensorRT {trt.__version__} could not deserialize {path} (other TensorRT version, "
                          "or the plugin library is missing: pass --plugin)")
    inputs, outputs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dt = engine.get_tensor_dtype(name).name
        if dt not in _TRT_TO_TRITON:
            raise DeployError(f"{name} has TensorRT type {dt}, which Triton does not support")
        spec = TensorSpec(name, _TRT_TO_TRITON[dt], [int(d) for d in engine.get_tensor_shape(name)])
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(spec)
    return inputs, outputs, trt.__version__


def _tensorrt_version() -> str | None:
    from ..trt import import_tensorrt

    try:
        return str(import_tensorrt().__version__)
    except ImportError:  # missing or older than the project supports
        return None


def preferred_batch_sizes(max_batch: int) -> list[int]:
    """Powers of two up to max_batch (and max_batch itself), the largest three: what the batcher aims for."""
    sizes = sorted({*(2**i for i in range(max_batch.bit_length()) if 2**i <= max_batch), max_batch})
    return [s for s in sizes if s > 1][-3:] or [max_batch]


def config_pbtxt(name: str, *, platform: str | None, backend: str | None, inputs: list[TensorSpec],
                 outputs: list[TensorSpec], max_batch: int, instances: int, kind: str,
                 dynamic_batching: bool, max_queue_delay_us: int = 100) -> str:
    """The text of config.pbtxt. With max_batch > 0 Triton adds the batch dim itself, so dim 0 is left out."""

    def tensor(t: TensorSpec) -> str:
        dims = t.dims[1:] if max_batch > 0 else t.dims
        return (f'  {{\n    name: "{t.name}"\n    data_type: {t.data_type}\n'
                f'    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}')

    lines = [f'name: "{name}"']
    if platform:
        lines.append(f'platform: "{platform}"')
    if backend:
        lines.append(f'backend: "{backend}"')
    lines.append(f"max_batch_size: {max_batch}")
    lines.append("input [\n" + ",\n".join(tensor(t) for t in inputs) + "\n]")
    lines.append("output [\n" + ",\n".join(tensor(t) for t in outputs) + "\n]")
    lines.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: KIND_{kind.upper()}\n  }}\n]")
    if dynamic_batching:
        sizes = ", ".join(str(s) for s in preferred_batch_sizes(max_batch))
        lines.append(f"dynamic_batching {{\n  preferred_batch_size: [ {sizes} ]\n"
                     f"  max_queue_delay_microseconds: {max_queue_delay_us}\n}}")
    return "\n".join(lines) + "\n"


def _readme(repo: Path, name: str, *, is_plan: bool, has_flurka: bool, plugin_rel: str | None,
            trt_version: str | None, kind: str) -> str:
    repo_abs = repo.resolve()
    out = [f"# Triton model repository: `{name}`", "",
           f"Generated by `flurka-export deploy triton`. Model `{name}`, version 1.", ""]
    if not is_plan:
        out += ["Backend: ONNX Runtime (`backend: \"onnxruntime\"`)."]
        if has_flurka:
            out += ["", "The model has `com.flurka::FlurkaAttention` nodes. They carry model-local function bodies "
                    "in standard ONNX ops, and ONNX Runtime runs those bodies (CPU and CUDA execution providers): "
                    "no plugin or custom-op library is needed."]
        out += ["", "Start the server:", "", "```sh", f"tritonserver --model-repository={repo_abs}", "```", "",
                "In the Triton container:", "", "```sh",
                f"docker run{' --gpus all' if kind == 'gpu' else ''} --rm -p8000:8000 -p8001:8001 -p8002:8002 "
                f"-v {repo_abs}:/models \\",
                "    nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models", "```"]
        return "\n".join(out) + "\n"
    out += ["Platform: TensorRT (`platform: \"tensorrt_plan\"`)."]
    if plugin_rel:
        out += ["", f"The plan uses the FlurkaAttention TensorRT plugin. Its library, `{plugin_rel}`, must be loaded "
                "into the server process before the plan is deserialized, so the server is started with LD_PRELOAD:",
                "", "```sh", f"LD_PRELOAD={repo_abs / plugin_rel} tritonserver --model-repository={repo_abs}", "```",
                "", "In the Triton container:", "", "```sh",
                f"docker run --gpus all --rm -p8000:8000 -p8001:8001 -p8002:8002 -v {repo_abs}:/models \\",
                f"    -e LD_PRELOAD=/models/{plugin_rel} \\",
                "    nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models", "```"]
    else:
        out += ["", "No plugin library was given (`--plugin`): this works only if the plan has no plugin layers.", "",
                "```sh", f"tritonserver --model-repository={repo_abs}", "```"]
    out += ["", "A TensorRT plan only loads in the TensorRT version that built it (and on the same GPU "
            "architecture): pick the Triton container whose TensorRT version matches "
            f"(this plan: TensorRT {trt_version or 'unknown: check the machine that built it'}). "
            "The plugin library must be built against that TensorRT too."]
    return "\n".join(out) + "\n"


def deploy_triton(model: str | os.PathLike, repo: str | os.PathLike, name: str, *, max_batch: int = 0,
                  instances: int = 1, dynamic_batching: bool = False, kind: str | None = None,
                  plugin: str | os.PathLike | None = None, onnx_path: str | os.PathLike | None = None,
                  max_queue_delay_us: int = 100) -> Path:
    """Write REPO/NAME (config.pbtxt, version 1) and REPO/README.md; returns REPO/NAME.

    `model` is an ONNX file or a TensorRT plan (.plan/.engine). For a plan the I/O comes from the engine
    (needs TensorRT) or from `onnx_path`, the ONNX file it was built from. All checks run before anything is
    written, and the model directory appears only complete.
    """
    model, repo = Path(model), Path(repo)
    if not model.is_file():
        raise DeployError(f"{model} does not exist or is not a file")
    if not name or "/" in name or name.startswith("."):
        raise DeployError(f"model name {name!r} must be a plain directory name")
    is_plan = model.suffix in (".plan", ".engine", ".trt")
    kind = kind or ("gpu" if is_plan else "cpu")
    if kind not in ("cpu", "gpu"):
        raise DeployError(f"--kind must be cpu or gpu, not {kind!r}")
    if is_plan and kind == "cpu":
        raise DeployError("a TensorRT plan runs only on a GPU: use --kind gpu")
    if max_batch < 0 or instances < 1:
        raise DeployError("--max-batch must be >= 0 and --instances >= 1")
    if dynamic_batching and max_batch < 1:
        raise DeployError("--dynamic-batching needs --max-batch of at least 1")
    if plugin is not None:
        plugin = Path(plugin)
        if not is_plan:
            raise DeployError("--plugin is for TensorRT plans; ONNX Runtime runs FlurkaAttention's function bodies")
        if not plugin.is_file():
            raise DeployError(f"plugin library {plugin} does not exist")

    has_flurka = False
    trt_version = _tensorrt_version()
    external: list[str] = []
    if is_plan:
        if onnx_path is not None:
            inputs, outputs, has_flurka = onnx_io(onnx_path)
        elif trt_version is None:
            raise DeployError(f"reading the inputs and outputs of {model} needs TensorRT, which is not installed: "
                              "pass --onnx with the ONNX file the plan was built from")
        else:
            inputs, outputs, trt_version = plan_io(model, plugin)
    else:
        inputs, outputs, has_flurka = onnx_io(model)
        external = _onnx_external_files(model)
    if max_batch > 0:
        fixed = [t.name for t in inputs + outputs if not t.dims or t.dims[0] != -1]
        if fixed:
            raise DeployError(f"--max-batch needs a dynamic first (batch) dimension, but {', '.join(fixed)} "
                              "has a fixed one: use --max-batch 0")

    text = config_pbtxt(name, platform="tensorrt_plan" if is_plan else None,
                        backend=None if is_plan else "onnxruntime", inputs=inputs, outputs=outputs,
                        max_batch=max_batch, instances=instances, kind=kind, dynamic_batching=dynamic_batching,
                        max_queue_delay_us=max_queue_delay_us)
    created_repo = not repo.exists()
    plugin_rel = f"{name}/{PLUGIN_NAME}" if plugin else None
    try:
        with atomic_path(repo / name, is_dir=True) as tmp:
            (tmp / "config.pbtxt").write_text(text)
            version = tmp / "1"
            version.mkdir()
            shutil.copyfile(model, version / ("model.plan" if is_plan else "model.onnx"))
            for f in external:  # the model refers to these by relative location: keep their names
                (version / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(model.parent / f, version / f)
            if plugin:
                shutil.copyfile(plugin, tmp / PLUGIN_NAME)
        readme = _readme(repo, name, is_plan=is_plan, has_flurka=has_flurka, plugin_rel=plugin_rel,
                         trt_version=trt_version, kind=kind)
        tmp_readme = repo / ".README.md.tmp"
        tmp_readme.write_text(readme)
        os.replace(tmp_readme, repo / "README.md")
    except BaseException:
        if created_repo:  # leave nothing behind, not even the empty directory
            shutil.rmtree(repo, ignore_errors=True)
        raise
    return repo / name
