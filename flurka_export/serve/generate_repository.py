"""The Triton repository of a model that generates: a decoupled Python-backend model (generate_model.py as
model.py) with the request fields of the TensorRT-LLM ensemble, behind Triton's generate and generate_stream
endpoints. Written by `write_python_repository` when the family spec's serving I/O has `generation`."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

# (name, Triton type, dims): every field optional; the TensorRT-LLM ensemble's names and types, plus vLLM's
# sampling_parameters. The token-id field is the model's token input (added per model).
REQUEST_FIELDS = (("text_input", "TYPE_STRING", "1"), ("max_tokens", "TYPE_INT32", "1"),
                  ("beam_width", "TYPE_INT32", "1"), ("temperature", "TYPE_FP32", "1"), ("top_k", "TYPE_INT32", "1"),
                  ("top_p", "TYPE_FP32", "1"), ("random_seed", "TYPE_UINT64", "1"), ("end_id", "TYPE_INT32", "1"),
                  ("stream", "TYPE_BOOL", "1"), ("sampling_parameters", "TYPE_STRING", "1"),
                  ("length_penalty", "TYPE_FP32", "1"), ("early_stopping", "TYPE_BOOL", "1"))
RESPONSE_FIELDS = (("text_output", "TYPE_STRING", "-1"), ("output_ids", "TYPE_INT32", "-1"))
STREAM_TIMEOUT_S = 600


def generate_model_source() -> str:
    return resources.files(__package__).joinpath("generate_model.py").read_text()


def generate_model_files() -> dict[str, str]:
    """The version directory's Python files: model.py and the decoders it loads from beside it."""
    return {"model.py": generate_model_source(),
            "generate_decoders.py": resources.files(__package__).joinpath("generate_decoders.py").read_text(),
            **{name: resources.files("flurka_export.generate").joinpath(name).read_text()
               for name in ("beam_core.py", "sampling.py")}}


def _field(name: str, dtype: str, dims: str, optional: bool) -> str:
    opt = "\n    optional: true" if optional else ""
    return f'  {{\n    name: "{name}"\n    data_type: {dtype}\n    dims: [ {dims} ]{opt}\n  }}'


def stub_handles_strings() -> bool:
    """Whether the Python backend's stub, running this interpreter's numpy, can pass string tensors: the stub of
    nvidia-pytriton's tritonserver is built for numpy 1 and a string tensor from numpy 2 kills it (numbers cross
    through DLPack and work with either)."""
    import numpy as np

    return int(np.__version__.split(".")[0]) < 2


def generate_config_pbtxt(name: str, facts: Any, *, max_streams: int, instances: int, threads: int,
                          stream_timeout_s: float = STREAM_TIMEOUT_S, string_fields: bool = True) -> str:
    """config.pbtxt for `facts` (repository.ModelFacts): decoupled (one response per token), max_batch_size 0 (model.py batches the streams in
    flight itself: continuous batching), every request field optional (model.py names what is missing). Without
    `string_fields` the string fields are left out (Triton itself refuses them, naming the field): ids in and out."""
    roles = dict(facts.generation or ())
    keep = lambda f: string_fields or f[1] != "TYPE_STRING"  # noqa: E731
    fields = [*filter(keep, REQUEST_FIELDS), (roles["token_input"], "TYPE_INT32", "-1")]
    responses = [*filter(keep, RESPONSE_FIELDS)]
    special = {k: "" if v is None else str(v) for k, v in facts.special_tokens.items()}
    params = {"onnx_file": "model.onnx", "intra_op_threads": str(threads), "allow_spinning": "0",
              "max_seq_len": "" if facts.max_seq_len is None else str(facts.max_seq_len),
              "vocab_size": "" if facts.vocab_size is None else str(facts.vocab_size),
              "max_streams": str(max_streams), "stream_timeout_s": f"{stream_timeout_s:g}",
              "generation": json.dumps(roles), "string_fields": "1" if string_fields else "0", **special}
    lines = [f'name: "{name}"', 'backend: "python"', "max_batch_size: 0",
             "model_transaction_policy {\n  decoupled: true\n}",
             "input [\n" + ",\n".join(_field(*f, optional=True) for f in fields) + "\n]",
             "output [\n" + ",\n".join(_field(*f, optional=False) for f in responses) + "\n]",
             f"instance_group [\n  {{\n    count: {instances}\n    kind: KIND_CPU\n  }}\n]"]
    lines += [f"parameters {{\n  key: \"{k}\"\n  value: {{ string_value: {json.dumps(v)} }}\n}}"
              for k, v in params.items()]
    return "\n".join(lines) + "\n"
