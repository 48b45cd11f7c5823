"""ONNX files in and out, and the flurka.* metadata the exporter writes: one module owns both.

`load_onnx` turns a missing, corrupt or non-model file into one clear OnnxFileError; `save_model`
writes atomically (external data beside the file over 2 GB); the META_* keys name what
`export_onnx` records in the model's metadata_props.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any

import onnx

from .utils import apply_umask, atomic_path, check_output_file

META_CONFIG = "flurka.config"  # FlurkaConfig as JSON
META_DTYPE = "flurka.dtype"  # fp32, fp16, bf16
META_ATTENTION_OP = "flurka.attention_op"  # custom, decomposed
META_MAX_SEQ_LEN = "flurka.max_seq_len"  # the largest sequence length the file was exported for
TWO_GB = 2**31


class OnnxFileError(ValueError):
    pass


def load_onnx(path: str | os.PathLike, *, load_external_data: bool = True) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise OnnxFileError(f"{path} does not exist or is not a file")
    if path.suffix.lower() in (".json", ".txt", ".safetensors", ".msgpack", ".npz", ".npy", ".pt", ".bin"):
        raise OnnxFileError(f"{path} is not a valid ONNX model (a {path.suffix} file; expected a .onnx file)")
    try:
        model = onnx.load(str(path), load_external_data=load_external_data)
    except Exception as e:  # protobuf DecodeError, json ParseError, OSError, ...: all mean "not a model"
        raise OnnxFileError(f"{path} is not a valid ONNX model ({type(e).__name__}: {e})") from None
    if not model.graph.node and not model.graph.output:
        raise OnnxFileError(f"{path} is not a valid ONNX model (no graph found)")
    return model


def save_model(model: onnx.ModelProto, path: str | os.PathLike, external_data: bool | None = None, *,
               overwrite: bool = True) -> None:
    """Write atomically with the user's umask; models over 2 GB go to external data beside the file
    (<name>.data). A failure or a signal leaves neither file behind."""
    if external_data is None:
        external_data = model.ByteSize() >= TWO_GB or sum(t.ByteSize() for t in model.graph.initializer) >= TWO_GB
    path = Path(path)
    data_name = path.name + ".data"
    if external_data:
        check_output_file(path.parent / data_name, overwrite=overwrite, what="external data file")
    with atomic_path(path, overwrite=overwrite) as tmp:
        onnx.save_model(model, tmp, save_as_external_data=external_data, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
        if external_data:  # written beside tmp (same directory): move it into place before the model file
            apply_umask(tmp.parent / data_name)
            os.replace(tmp.parent / data_name, path.parent / data_name)


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    """The model's metadata_props as a dict."""
    return {p.key: p.value for p in model.metadata_props}


def exported_config(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The FlurkaConfig dict recorded by the exporter, or None for a model without one."""
    text = metadata(model).get(META_CONFIG)
    return json.loads(text) if text is not None else None


def exported_max_seq_len(model: onnx.ModelProto) -> int | None:
    text = metadata(model).get(META_MAX_SEQ_LEN)
    return int(text) if text is not None else None


FLOAT_DTYPES = {onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16"}


@dataclasses.dataclass
class ExportedModel:
    """An ONNX file's flurka.* metadata and I/O names, parsed once: what verify, inspect, serve, deploy, bench,
    optimize and the TensorRT profiles read instead of asking the metadata again and again.

    `config` and `spec` are None for a model without flurka.config (not exported by flurka-export)."""

    proto: onnx.ModelProto
    path: Path | None
    metadata: dict[str, str]
    config_dict: dict[str, Any] | None
    dtype: str  # flurka.dtype, else the float type of the weights (fp32, fp16, bf16)
    attention_op: str | None  # custom, decomposed
    max_seq_len: int | None  # the longest sequence the file was exported for (else the config's N_max)
    input_names: list[str]
    output_names: list[str]

    @classmethod
    def read(cls, source: str | os.PathLike | onnx.ModelProto, *, load_external_data: bool = False) -> ExportedModel:
        """From a path (weights not loaded unless asked) or an already loaded ModelProto."""
        path = None if isinstance(source, onnx.ModelProto) else Path(source)
        proto = source if path is None else load_onnx(path, load_external_data=load_external_data)
        props = metadata(proto)
        config = json.loads(props[META_CONFIG]) if META_CONFIG in props else None
        dtype = props.get(META_DTYPE)
        if dtype not in ("fp32", "fp16", "bf16"):
            dtype = next((FLOAT_DTYPES[t.data_type] for t in proto.graph.initializer if t.data_type in FLOAT_DTYPES),
                         "fp32")
        n_max = props.get(META_MAX_SEQ_LEN)
        max_seq_len = int(n_max) if n_max is not None else (int(config["max_seq_len"]) if config else None)
        return cls(proto, path, props, config, dtype, props.get(META_ATTENTION_OP), max_seq_len,
                   [i.name for i in proto.graph.input], [o.name for o in proto.graph.output])

    @functools.cached_property
    def config(self) -> Any:
        """The FlurkaConfig the file was exported from, or None."""
        from .models import FlurkaConfig

        return FlurkaConfig.from_dict(self.config_dict) if self.config_dict is not None else None

    @property
    def spec(self) -> Any:
        """The FamilySpec of the exported model, or None."""
        return self.config.spec if self.config is not None else None

    def require_config(self, why: str) -> Any:
        """The config, or ValueError: `why` needs it."""
        if self.config is None:
            where = f"{self.path} " if self.path else "the model "
            raise ValueError(f"{where}carries no {META_CONFIG} metadata (not exported by flurka-export); {why}")
        return self.config
