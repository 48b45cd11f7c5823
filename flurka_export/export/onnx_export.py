"""PyTorch to ONNX: one com.flurka::FlurkaAttention node per kernel-*/flurka-* layer (custom mode)
or the same math in standard ops (decomposed mode)."""

from __future__ import annotations

import functools
import logging
import os
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from ..models import FlurkaConfig, load_pretrained
from ..onnx_io import META_ATTENTION_OP, META_CONFIG, META_DTYPE, META_MAX_SEQ_LEN, TWO_GB, save_model
from ..ops import export_mode
from ..ops.onnx_bodies import attach_function_bodies
from ..ops.schema import OP_DOMAIN, OP_NAME
from ..passes.causal_core import LINEAR_ATTENTION, lower_causal_core
from ..passes.max_seq_len_guard import add_max_seq_len_guard
from ..utils import check_output_dir, check_output_file
from ..version import __version__
from .parts import export_parts

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MIN_OPSET = 18
MAX_OPSET = 25  # newest standard opset the exporter reaches and ONNX Runtime CPU runs (tests/export/test_export_opset.py)


class ExportError(ValueError):
    pass


def _as_model(model_or_dir: nn.Module | str | os.PathLike) -> nn.Module:
    if isinstance(model_or_dir, nn.Module):
        if not isinstance(getattr(model_or_dir, "config", None), FlurkaConfig):
            raise ExportError("the model has no FlurkaConfig in .config; build it with flurka_export.models.build_model")
        return model_or_dir
    return load_pretrained(model_or_dir)


def _config_of(source: nn.Module | str | os.PathLike) -> FlurkaConfig:
    """The config, read before the weights (the output path is checked first)."""
    if isinstance(source, nn.Module):
        return _as_model(source).config
    from ..models import load_config

    return load_config(source)


def example_inputs(config: FlurkaConfig, batch: int = 2, seq_len: int | None = None,
                   dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Inputs that fit the model, named as in the ONNX graph (the family spec's example inputs)."""
    return config.spec.example_inputs(config, batch, seq_len, dtype)


def _check_options(opset: int, dtype: str, attention_op: str, max_seq_len: int | None,
                   linear_attention: str = "ort") -> None:
    """Options that need no model: checked before the checkpoint is read."""
    if linear_attention not in LINEAR_ATTENTION:
        raise ExportError(f"unknown linear_attention {linear_attention!r}; allowed: {', '.join(LINEAR_ATTENTION)}")
    if dtype not in DTYPES:
        raise ExportError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    if attention_op not in ("custom", "decomposed"):
        raise ExportError(f"unknown attention_op {attention_op!r}; allowed: custom, decomposed")
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset} is not supported; allowed: {MIN_OPSET} to {MAX_OPSET}")
    if max_seq_len is not None and (isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int)
                                    or max_seq_len < 2):
        raise ExportError(f"max_seq_len={max_seq_len!r} must be an integer of at least 2")


def _check_max_seq_len(config: FlurkaConfig, max_seq_len: int | None) -> int:
    n_max = config.max_seq_len
    if max_seq_len is None:
        return n_max
    if max_seq_len > n_max:
        raise ExportError(f"max_seq_len={max_seq_len} is outside the model's range: 2 to N_max={n_max}")
    return max_seq_len


def _name_flurka_nodes(model: onnx.ModelProto) -> None:
    """Name each FlurkaAttention node after its module ("encoder.layers.0.attention/FlurkaAttention")."""
    for node in model.graph.node:
        if node.domain == OP_DOMAIN and node.op_type == OP_NAME:
            scope = _module_scope(node)
            if scope:
                node.name = f"{scope}/{OP_NAME}"


def _module_scope(node: onnx.NodeProto) -> str | None:
    import ast

    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                return None
            return scopes[-2] if len(scopes) >= 2 else None
    return None


def _strip_debug_metadata(model: onnx.ModelProto) -> None:
    """Drop exporter stack traces (they hold local file paths and bloat the file)."""
    for node in model.graph.node:
        keep = [p for p in node.metadata_props if p.key not in ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node")]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)


def export_onnx(
    model_or_checkpoint_dir: nn.Module | str | os.PathLike,
    path: str | os.PathLike,
    *,
    opset: int = 20,
    dtype: str = "fp32",
    attention_op: str = "custom",
    max_seq_len: int | None = None,
    linear_attention: str = "ort",
    external_data: bool | None = None,
    check: bool = True,
    overwrite: bool = True,
) -> Path:
    """Export a FLuRKA model (or a checkpoint directory) to ONNX at `path`; returns the path.

    Batch and sequence length are dynamic, the sequence up to `max_seq_len` (default N_max).
    """
    _check_options(opset, dtype, attention_op, max_seq_len, linear_attention)
    config = _config_of(model_or_checkpoint_dir)
    if not config.spec.export_parts(config):
        path = check_output_file(path, overwrite=overwrite, what="ONNX file")
    else:  # a directory of files (optimum's layout)
        path = check_output_dir(path, overwrite=overwrite, writes=[f for _, f in config.spec.export_parts(config)]
                                 + [m[0] for m in config.spec.merged_parts(config)],
                                what="output directory")
    model = _as_model(model_or_checkpoint_dir)
    n_max = _check_max_seq_len(config, max_seq_len)
    torch_dtype = DTYPES[dtype]
    model = model.eval()
    if torch_dtype != torch.float32:
        import copy

        model = copy.deepcopy(model).to(torch_dtype)
    spec = config.spec
    trace = functools.partial(export_graph, model_or_checkpoint_dir, config, opset=opset, dtype=dtype,
                              attention_op=attention_op, max_seq_len=n_max, linear_attention=linear_attention,
                              check=check)
    if spec.export_parts(config):
        return export_parts(model, path, trace, torch_dtype, n_max, external_data=external_data, overwrite=overwrite)
    part = {"module": spec.export_module(model), "kwargs": example_inputs(config, dtype=torch_dtype),
            "input_names": spec.input_names(config), "output_names": spec.output_names(config),
            "dynamic_shapes": spec.dynamic_shapes(config, n_max),
            "guards": dict.fromkeys(spec.sequence_inputs(config), n_max)}
    onnx_model = trace(part)
    save_model(onnx_model, path, external_data, overwrite=overwrite)
    return path


def export_graph(source: object, config: FlurkaConfig, part: dict, *, opset: int, dtype: str, attention_op: str,
                 max_seq_len: int, linear_attention: str, check: bool) -> onnx.ModelProto:
    """Trace one module (`part`: module, kwargs, names, dynamic shapes, guards) and finish its graph: function
    bodies, the causal core lowered, the family's touch-ups, length guards, metadata, the checker."""
    with export_mode(attention_op), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(
            part["module"], (), kwargs=part["kwargs"], dynamo=True, opset_version=opset,
            input_names=part["input_names"], output_names=part["output_names"],
            dynamic_shapes=part["dynamic_shapes"], optimize=True, verbose=False,
        )
    onnx_model = program.model_proto
    _name_flurka_nodes(onnx_model)
    attach_function_bodies(onnx_model, opset)
    onnx_model, _ = lower_causal_core(onnx_model, linear_attention)
    config.spec.finish_export(config, onnx_model)
    for name, limit in part["guards"].items():
        onnx_model, _ = add_max_seq_len_guard(onnx_model, limit, [name])
    _strip_debug_metadata(onnx_model)
    onnx_model.producer_name = "flurka-export"
    onnx_model.producer_version = __version__
    if attention_op == "custom" and not any(n.domain == OP_DOMAIN and n.op_type == OP_NAME for n in onnx_model.graph.node):
        attention_op = "none"  # no layer of this file uses the op (causal LinearAttention, a seq2seq decoder part)
    meta = {META_CONFIG: config_to_json(config), META_DTYPE: dtype, META_ATTENTION_OP: attention_op,
            META_MAX_SEQ_LEN: str(max_seq_len), **_generation_metadata(source)}
    onnx.helper.set_model_props(onnx_model, meta)
    if check:
        _check(onnx_model, opset)
    return onnx_model


def _generation_metadata(source: object) -> dict[str, str]:
    """generation_config.json and tokenizer.json of a checkpoint directory travel in the model's metadata, so
    `generate model.onnx` needs nothing else."""
    if isinstance(source, nn.Module):
        return {}
    from ..onnx_io import META_GENERATION, META_TOKENIZER

    out = {}
    for name, key in (("generation_config.json", META_GENERATION), ("tokenizer.json", META_TOKENIZER)):
        f = Path(source) / name
        if f.is_file():
            out[key] = f.read_text()
    return out


def config_to_json(config: FlurkaConfig) -> str:
    import json

    return json.dumps(config.to_dict(), sort_keys=True)


def _check(model: onnx.ModelProto, opset: int) -> None:
    if model.ByteSize() < TWO_GB:
        try:
            onnx.checker.check_model(model, full_check=True)
        except onnx.checker.ValidationError as e:  # e.g. an opset the exporter's version converter cannot reach
            raise ExportError(f"the graph exported for opset {opset} is not valid ONNX "
                              f"({str(e).strip().splitlines()[0]}); torch {torch.__version__} is known to export "
                              f"opsets {MIN_OPSET} to 25") from None
