"""An exported ONNX file's flurka.* metadata, config and I/O names, parsed once (ExportedModel): what verify,
inspect, serve, deploy, bench, optimize and the TensorRT profiles read instead of asking the metadata again."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any

import onnx

from ..onnx_io import META_ATTENTION_OP, META_CONFIG, META_DTYPE, META_MAX_SEQ_LEN, load_onnx, metadata
from .config import FlurkaConfig

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
