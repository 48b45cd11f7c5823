"""A Triton model repository for the Python backend: REPO/NAME/config.pbtxt, REPO/NAME/V/model.py (ONNX
Runtime inside the backend) and REPO/NAME/V/model.onnx (+ external data).

This is what `flurka-export serve` runs on the bundled Triton server and what `deploy triton --backend python`
writes. Safety, the same as `deploy triton`'s: a new model directory appears only complete; in an existing one,
a new version directory is added (an existing version needs `overwrite`, and then only the files written here
are replaced), and config.pbtxt is replaced only when it says the same or with `overwrite`. Nothing the call
did not create is deleted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from importlib import resources
from pathlib import Path

import onnx

from ..deploy.triton import (
    DeployError,
    TensorSpec,
    check_same_or_overwrite,
    check_version,
    onnx_external_files,
    onnx_io,
)
from ..models.exported import ExportedModel
from ..onnx_io import META_GENERATION, META_TOKENIZER
from ..utils import atomic_path

MODEL_FILE = "model.onnx"
SPECIAL_TOKENS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")  # generation_config.json


@dataclasses.dataclass
class ModelFacts:
    """What the backend needs to know about an exported model: its family spec's serving I/O."""

    attention: str | None
    task: str | None
    max_seq_len: int | None
    vocab_size: int | None
    pad_across_lengths: bool
    sequence_inputs: tuple[str, ...] = ()  # zero-padded along dim 1 to batch requests of different lengths
    per_token_outputs: tuple[str, ...] = ()  # padded rows cut off per request
    token_input: str | None = None  # checked against vocab_size
    mask_input: str | None = None  # 0/1 padding mask
    generation: tuple[tuple[str, str], ...] | None = None  # families that generate: model.py's names by role
    special_tokens: dict[str, int | None] = dataclasses.field(default_factory=dict)  # bos/eos/pad token ids
    tokenizer: str | None = None  # tokenizer.json's text


def model_facts(path: str | os.PathLike | onnx.ModelProto | ExportedModel) -> ModelFacts:
    """From the flurka.* metadata: the family's serving I/O (models/specs/), and whether requests of different
    lengths may be padded into one batch (the spec's padding_invariant)."""
    if isinstance(path, str | os.PathLike) and Path(path).is_dir():  # an export directory: its first file
        path = served_files(path)[0]
    exported = path if isinstance(path, ExportedModel) else ExportedModel.read(path)
    config = exported.config
    if config is None:
        return ModelFacts(None, None, None, None, pad_across_lengths=False)
    io = config.spec.serving(config, exported.max_seq_len)
    meta = exported.metadata
    special = json.loads(meta[META_GENERATION]) if io.generation and META_GENERATION in meta else {}
    eos = special.get("eos_token_id")
    special["eos_token_id"] = eos[0] if isinstance(eos, list) and eos else eos  # transformers allows several
    return ModelFacts(config.attention, config.task, io.max_seq_len, io.vocab_size, io.padding_invariant,
                      io.sequence_inputs, io.per_token_outputs, io.token_input, io.mask_input, io.generation,
                      {k: special.get(k) for k in SPECIAL_TOKENS} if io.generation else {},
                      meta.get(META_TOKENIZER) if io.generation else None)


def _tensor(t: TensorSpec, *, ragged: bool) -> str:
    dims = ", ".join(str(d) for d in t.dims[1:])  # the batch dim belongs to Triton (max_batch_size > 0)
    extra = "\n    allow_ragged_batch: true" if ragged else ""
    return f'  {{\n    name: "{t.name}"\n    data_type: {t.data_type}\n    dims: [ {dims} ]{extra}\n  }}'


def python_config_pbtxt(name: str, inputs: list[TensorSpec], outputs: list[TensorSpec], facts: ModelFacts, *,
                        max_batch: int, max_queue_delay_us: int, instances: int, threads: int) -> str:
    """config.pbtxt for model.py. Inputs of padding-invariant text models are ragged: the dynamic batcher may
    then put requests of different lengths into one batch, which model.py pads. Otherwise the batcher only
    groups requests of equal shape (and model.py still runs each length on its own)."""
    ragged = facts.pad_across_lengths and bool(facts.sequence_inputs)
    params = {"onnx_file": MODEL_FILE, "intra_op_threads": str(threads), "allow_spinning": "0",
              "max_seq_len": "" if facts.max_seq_len is None else str(facts.max_seq_len),
              "vocab_size": "" if facts.vocab_size is None else str(facts.vocab_size),
              "pad_across_lengths": "true" if facts.pad_across_lengths else "false",
              "attention": facts.attention or "", "sequence_inputs": ",".join(facts.sequence_inputs),
              "per_token_outputs": ",".join(facts.per_token_outputs), "token_input": facts.token_input or "",
              "mask_input": facts.mask_input or ""}
    lines = [f'name: "{name}"', 'backend: "python"', f"max_batch_size: {max_batch}",
             "input [\n" + ",\n".join(_tensor(t, ragged=ragged) for t in inputs) + "\n]",
             "output [\n" + ",\n".join(_tensor(t, ragged=False) for t in outputs) + "\n]",
             f"instance_group [\n  {{\n    count: {instances}\n    kind: KIND_CPU\n  }}\n]",
             f"dynamic_batching {{\n  preferred_batch_size: [ {max_batch} ]\n"
             f"  max_queue_delay_microseconds: {max_queue_delay_us}\n}}"]
    lines += [f'parameters {{\n  key: "{k}"\n  value: {{ string_value: "{v}" }}\n}}' for k, v in params.items()]
    return "\n".join(lines) + "\n"


def model_py_source() -> str:
    return resources.files(__package__).joinpath("triton_model.py").read_text()


def served_files(model: str | os.PathLike) -> list[Path]:
    """The ONNX files a repository holds for MODEL: the file itself, or the parts of an export directory (seq2seq:
    encoder, first decoder step, decoder with past); the first file's metadata describes the model."""
    from ..export.inspect_dir import export_files

    model = Path(model)
    if model.is_dir():
        try:
            return export_files(model, merged=False)
        except ValueError as e:
            raise DeployError(str(e)) from None
    if not model.is_file() or model.suffix != ".onnx":
        raise DeployError(f"{model} is not an ONNX file (.onnx) or an export directory; the Python backend runs "
                          "ONNX models")
    return [model]


def _check(name: str, max_batch: int, instances: int, threads: int, max_queue_delay_us: int) -> None:
    if not name or "/" in name or name.startswith("."):
        raise DeployError(f"model name {name!r} must be a plain directory name")
    if max_batch < 1 or instances < 1 or threads < 0 or max_queue_delay_us < 0:
        raise DeployError("--max-batch and --instances must be >= 1, --threads and --max-queue-delay-us >= 0")


def _fill_version(version_dir: Path, models: list[tuple[Path, str]], external: list[str], link: bool,
                  files: dict[str, str]) -> None:
    version_dir.mkdir()
    for fname, text in files.items():  # model.py (and tokenizer.json)
        (version_dir / fname).write_text(text)
    for src, dst in [*models, *((models[0][0].parent / f, f) for f in external)]:
        (version_dir / dst).parent.mkdir(parents=True, exist_ok=True)
        if link:  # serve: the repository is temporary, no need to copy the weights
            os.symlink(src.resolve(), version_dir / dst)
        else:
            shutil.copyfile(src, version_dir / dst)


def write_python_repository(model: str | os.PathLike, repo: str | os.PathLike, name: str, *,
                            version: int | None = None, overwrite: bool = False, max_batch: int = 8,
                            max_queue_delay_us: int = 2000, instances: int = 1, threads: int = 0,
                            link_model: bool = False, string_fields: bool = True) -> Path:
    """Write (or add a version to) REPO/NAME for the Python backend; returns the version directory.
    `string_fields` False: a generating model's repository declares no string field (see generate_repository)."""
    repo = Path(repo)
    parts = served_files(model)
    _check(name, max_batch, instances, threads, max_queue_delay_us)
    exported = ExportedModel.read(parts[0])  # read once: I/O, metadata, external data
    proto = exported.proto
    inputs, outputs, _ = onnx_io(proto)
    fixed = [t.name for t in inputs + outputs if not t.dims or t.dims[0] != -1]
    if fixed:
        raise DeployError(f"dynamic batching needs a dynamic first (batch) dimension; {', '.join(fixed)} has none")
    facts = model_facts(exported)
    if len(parts) > 1 and not facts.generation:
        raise DeployError(f"{model} is an export directory of a model that does not generate; serve one ONNX file")
    # One file is model.onnx; the parts of a directory keep their names (model.py's roles name them).
    models = [(parts[0], MODEL_FILE)] if len(parts) == 1 else [(p, p.name) for p in parts]
    external = [f for p in parts
                for f in onnx_external_files(p, proto if p == parts[0] else onnx.load(str(p), load_external_data=False))]
    if facts.generation:  # token by token: a decoupled model behind the generate endpoints
        from .generate_repository import generate_config_pbtxt, generate_model_files

        text = generate_config_pbtxt(name, facts, max_streams=max_batch, instances=instances, threads=threads,
                                     string_fields=string_fields)
        files = {**generate_model_files(), **({"tokenizer.json": facts.tokenizer} if facts.tokenizer else {})}
    else:
        text = python_config_pbtxt(name, inputs, outputs, facts, max_batch=max_batch,
                                   max_queue_delay_us=max_queue_delay_us, instances=instances, threads=threads)
        files = {"model.py": model_py_source()}
    model_dir = repo / name
    version = check_version(model_dir, version, overwrite)
    check_same_or_overwrite(model_dir / "config.pbtxt", text.encode(), overwrite)
    with atomic_path(model_dir, is_dir=True, overwrite=True) as tmp:  # merges: other versions and files stay
        (tmp / "config.pbtxt").write_text(text)
        _fill_version(tmp / str(version), models, external, link_model, files)
    return model_dir / str(version)
