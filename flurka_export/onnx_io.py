"""ONNX files in and out, and the flurka.* metadata the exporter writes: one module owns both.

`load_onnx` turns a missing, corrupt or non-model file into one clear OnnxFileError; `save_model`
writes atomically (external data beside the file over 2 GB); the META_* keys name what
`export_onnx`, the quantizer and the optimizer record in the model's metadata_props; no other module
spells a flurka.* key.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from .utils import apply_umask, atomic_path, check_output_file

META_CONFIG = "flurka.config"  # FlurkaConfig as JSON
META_DTYPE = "flurka.dtype"  # fp32, fp16, bf16
META_ATTENTION_OP = "flurka.attention_op"  # custom, decomposed; none: no FlurkaAttention node in the file
META_MAX_SEQ_LEN = "flurka.max_seq_len"  # the largest sequence length the file was exported for
META_GENERATION = "flurka.generation_config"  # generating families: bos/eos/pad token ids as JSON
META_TOKENIZER = "flurka.tokenizer"  # generating families: the checkpoint's tokenizer.json, when it has one
META_QUANTIZATION = "flurka.quantization"  # written by quantize_int8: "int8-dynamic" or "int8-static"
META_OPTIMIZED = "flurka.optimized"  # written by optimize: the fusion level and what was fused
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
