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
from typing import Any

import onnx

from ..trt.plugin import STATIC_LIBRARY_NAME
from ..utils import atomic_path, check_output_dir
from .plan_plugin import PlanPluginError, resolve_plan_plugin, serialized_plugin_readme

PLUGIN_NAME = STATIC_LIBRARY_NAME  # Triton's TensorRT backend dlopens plugins: the self-registering library

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


def onnx_io(path: str | os.PathLike | onnx.ModelProto) -> tuple[list[TensorSpec], list[TensorSpec], bool]:
    """Inputs and outputs of an ONNX file or model (weights not loaded), and whether it has FlurkaAttention nodes."""
    from ..onnx_io import load_onnx
    from ..ops.schema import OP_DOMAIN, OP_NAME

    model = path if isinstance(path, onnx.ModelProto) else load_onnx(path, load_external_data=False)
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


def onnx_external_files(path: Path, model: onnx.ModelProto) -> list[str]:
    """The external-data files `model` (read from `path`) refers to, each checked to be beside it."""
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
    runtime = trt.Runtime(logger)
    runtime.engine_host_code_allowed = True  # version-compatible plans (carrying their plugin) need it
    engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
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


def check_version(model_dir: Path, version: int | None, overwrite: bool) -> int:
    """The version to write: `version`, or the next after the highest numbered one in `model_dir`."""
    existing = sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()) \
        if model_dir.is_dir() else []
    if version is None:
        return (existing[-1] + 1) if existing else 1
    if version < 1:
        raise DeployError(f"--version must be 1 or more, not {version}")
    if version in existing and not overwrite:
        raise DeployError(f"{model_dir / str(version)} already exists; pick another --version (next free: "
                          f"{existing[-1] + 1}) or pass --overwrite to replace its files")
    return version


def check_same_or_overwrite(path: Path, data: bytes, overwrite: bool) -> None:
    """A shared file of a model directory (config.pbtxt) may be rewritten only with the same bytes or `overwrite`."""
    if path.exists() and not overwrite and path.read_bytes() != data:
        raise DeployError(f"{path} exists and differs from what this model needs (its inputs, outputs, batching "
                          "or plugin changed): pass --overwrite to replace it, or deploy under another --name")


def _check_bodies(model: Path, proto: onnx.ModelProto) -> None:
    """ONNX Runtime runs FlurkaAttention only through its function body: refuse a file without them."""
    from ..ops.schema import OP_DOMAIN, OP_NAME

    bodies = {(f.domain, f.name, f.overload) for f in proto.functions}
    missing = [n.name or n.output[0] for n in proto.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_NAME
               and (n.domain, n.op_type, n.overload) not in bodies]
    if missing:
        raise DeployError(f"{model}: FlurkaAttention node(s) {', '.join(missing)} have no function body (removed by "
                          "prepare-trt --strip-bodies?), so the onnxruntime backend cannot run them; deploy the "
                          "file from `export`, or a TensorRT plan built from it with the plugin (tensorrt_plan)")


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


def _client_example(name: str, io: Any) -> list[str]:
    """A client call that checks the sequence length before sending (the model refuses longer ones too); the
    tensor names are the family spec's serving I/O."""
    max_seq_len, ids, mask = io.max_seq_len, io.token_input, io.mask_input
    inputs = f"http.InferInput('{ids}', ids.shape, 'INT64')" + (
        f", http.InferInput('{mask}', ids.shape, 'INT64')" if mask else "")
    fill = "inputs[0].set_data_from_numpy(ids)" + ("; inputs[1].set_data_from_numpy(np.ones_like(ids))" if mask else "")
    return ["", f"Requests longer than max_seq_len={max_seq_len} tokens are refused by the model itself (the error "
            f"names `max_seq_len={max_seq_len}`); check before sending:", "", "```python",
            "import numpy as np, tritonclient.http as http",
            f"MAX_SEQ_LEN = {max_seq_len}",
            "ids = np.array([[101, 2023, 2003, 102]], dtype=np.int64)",
            "if ids.shape[1] > MAX_SEQ_LEN:",
            "    raise ValueError(f'sequence of {ids.shape[1]} tokens; this model takes at most {MAX_SEQ_LEN}')",
            "client = http.InferenceServerClient('localhost:8000')",
            f"inputs = [{inputs}]", fill,
            f"print(client.infer('{name}', inputs).as_numpy('{io.outputs[0]}'))", "```"]


def _readme(repo: Path, name: str, *, is_plan: bool, has_flurka: bool, plugin_rel: str | None,
            trt_version: str | None, kind: str, serving: Any = None,
            serialized_plugin: bool = False) -> str:
    repo_abs = repo.resolve()
    out = [f"# Triton model repository: `{name}`", "",
           f"Generated by `flurka-export deploy triton` for model `{name}` (Triton serves its newest version).", ""]
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
        if serving is not None:
            out += _client_example(name, serving)
        return "\n".join(out) + "\n"
    out += ["Platform: TensorRT (`platform: \"tensorrt_plan\"`)."]
    if serialized_plugin:  # plugin hook (plan_plugin.py)
        out += serialized_plugin_readme(repo_abs)
    elif plugin_rel:
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
    if serving is not None:
        out += _client_example(name, serving)
    return "\n".join(out) + "\n"


def _check_request(model: Path, name: str, *, is_plan: bool, kind: str, max_batch: int, instances: int,
                   dynamic_batching: bool, plugin: str | os.PathLike | None) -> None:
    """Every argument check of deploy_triton, before anything is read or written."""
    if not model.is_file():
        raise DeployError(f"{model} does not exist or is not a file")
    if not name or "/" in name or name.startswith("."):
        raise DeployError(f"model name {name!r} must be a plain directory name")
    if kind not in ("cpu", "gpu"):
        raise DeployError(f"--kind must be cpu or gpu, not {kind!r}")
    if is_plan and kind == "cpu":
        raise DeployError("a TensorRT plan runs only on a GPU: use --kind gpu")
    if max_batch < 0 or instances < 1:
        raise DeployError("--max-batch must be >= 0 and --instances >= 1")
    if dynamic_batching and max_batch < 1:
        raise DeployError("--dynamic-batching needs --max-batch of at least 1")
    if plugin is not None:
        if not is_plan:
            raise DeployError("--plugin is for TensorRT plans; ONNX Runtime runs FlurkaAttention's function bodies")
        if not Path(plugin).is_file():
            raise DeployError(f"plugin library {plugin} does not exist")


def _model_io(model: Path, proto: onnx.ModelProto | None, *, is_plan: bool,
              plugin: Path | None) -> tuple[list[TensorSpec], list[TensorSpec], bool, str | None]:
    """(inputs, outputs, has FlurkaAttention, TensorRT version): from the ONNX file when there is one (an ONNX
    model must carry the op's bodies), else from the plan itself, which needs TensorRT."""
    trt_version = _tensorrt_version()
    if proto is not None:
        if not is_plan:
            _check_bodies(model, proto)
        return (*onnx_io(proto), trt_version)
    if trt_version is None:
        raise DeployError(f"reading the inputs and outputs of {model} needs TensorRT, which is not installed: "
                          "pass --onnx with the ONNX file the plan was built from")
    inputs, outputs, trt_version = plan_io(model, plugin)
    return inputs, outputs, False, trt_version


def deploy_triton(model: str | os.PathLike, repo: str | os.PathLike, name: str, *, max_batch: int = 0,
                  instances: int = 1, dynamic_batching: bool = False, kind: str | None = None,
                  plugin: str | os.PathLike | None = None, onnx_path: str | os.PathLike | None = None,
                  max_queue_delay_us: int = 100, version: int | None = None, overwrite: bool = False) -> Path:
    """Write REPO/NAME/VERSION (default: the next free version), REPO/NAME/config.pbtxt and
    REPO/NAME/README.md; returns REPO/NAME.

    Other models, other versions and other files in the repository are never touched. An existing
    version, or a config.pbtxt / README.md / plugin that differs from what this model needs, is refused
    unless `overwrite`.

    `model` is an ONNX file or a TensorRT plan (.plan/.engine). For a plan the I/O comes from the engine
    (needs TensorRT) or from `onnx_path`, the ONNX file it was built from. All checks run before anything is
    written, and the model directory appears only complete.
    """
    model, repo = Path(model), Path(repo)
    is_plan = model.suffix in (".plan", ".engine", ".trt")
    kind = kind or ("gpu" if is_plan else "cpu")
    _check_request(model, name, is_plan=is_plan, kind=kind, max_batch=max_batch, instances=instances,
                   dynamic_batching=dynamic_batching, plugin=plugin)
    plugin = Path(plugin) if plugin is not None else None
    # --- plugin hook (plan_plugin.py): the library Triton dlopens, or none when the plan carries its own ---
    serialized_plugin = False
    if is_plan:
        try:
            plugin, serialized_plugin = resolve_plan_plugin(model, plugin)
        except PlanPluginError as e:
            raise DeployError(str(e)) from None

    from ..models.exported import ExportedModel

    onnx_file = onnx_path if is_plan else model  # the ONNX file, read once (weights not loaded)
    exported = ExportedModel.read(onnx_file) if onnx_file is not None else None
    proto = exported.proto if exported is not None else None
    inputs, outputs, has_flurka, trt_version = _model_io(model, proto, is_plan=is_plan, plugin=plugin)
    external = [] if is_plan else onnx_external_files(model, proto)
    if max_batch > 0:
        fixed = [t.name for t in inputs + outputs if not t.dims or t.dims[0] != -1]
        if fixed:
            raise DeployError(f"--max-batch needs a dynamic first (batch) dimension, but {', '.join(fixed)} "
                              "has a fixed one: use --max-batch 0")

    text = config_pbtxt(name, platform="tensorrt_plan" if is_plan else None,
                        backend=None if is_plan else "onnxruntime", inputs=inputs, outputs=outputs,
                        max_batch=max_batch, instances=instances, kind=kind, dynamic_batching=dynamic_batching,
                        max_queue_delay_us=max_queue_delay_us)
    plugin_rel = f"{name}/{PLUGIN_NAME}" if plugin else None
    serving = exported.spec.serving(exported.config, exported.max_seq_len) if exported and exported.spec else None
    if serving is not None and serving.generation:
        raise DeployError(f"{model} generates token by token, with a state per request, which the onnxruntime and "
                          "tensorrt_plan backends do not keep: use --backend python (a decoupled model behind "
                          "Triton's generate and generate_stream endpoints)")
    if serving is not None and (serving.token_input is None or serving.max_seq_len is None):
        serving = None  # the README's client example sends token ids
    readme = _readme(repo, name, is_plan=is_plan, has_flurka=has_flurka, plugin_rel=plugin_rel,
                     trt_version=trt_version, kind=kind, serving=serving,
                     serialized_plugin=serialized_plugin)
    model_dir = repo / name
    version = check_version(model_dir, version, overwrite)
    check_output_dir(repo, overwrite=True, what="model repository")
    shared = {"config.pbtxt": text.encode(), "README.md": readme.encode()}
    if plugin:
        shared[PLUGIN_NAME] = Path(plugin).read_bytes()
    for fname, data in shared.items():
        check_same_or_overwrite(model_dir / fname, data, overwrite)
    with atomic_path(model_dir, is_dir=True, overwrite=True) as tmp:  # merges: other versions and files stay
        for fname, data in shared.items():
            (tmp / fname).write_bytes(data)
        vdir = tmp / str(version)
        vdir.mkdir()
        shutil.copyfile(model, vdir / ("model.plan" if is_plan else "model.onnx"))
        for f in external:  # the model refers to these by relative location: keep their names
            (vdir / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model.parent / f, vdir / f)
    return repo / name
