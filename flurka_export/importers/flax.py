"""Import a checkpoint of the authors' JAX/Flax code (the `sabertooth` code base) so that our model
computes what their code computes at inference.

Their tree (BertModel, post-LN blocks; FastSelfAttention wraps one attention module as `mha` and never
applies the padding mask, so the import sets mask_keys_in_attention=false):

    bert/word_embeddings/embedding (V, D)      bert/position_embeddings/embedding (N_pos, D)
    bert/type_embeddings/embedding (T, D)      bert/embeddings_layer_norm/{scale, bias}
    bert/encoder_layer_{i}/self_attention[/mha]/{query, key, value}/{kernel (D, H, d), bias (H, d)}
                                         .../out/{kernel (H, d, D), bias (D,)}
                                         .../{key,value}_downsample_mat_{128,512} (k, N)   (Lin* modules)
                                         .../sigma (H, 1, d)                                (RFA modules)
    bert/encoder_layer_{i}/{self_attention_layer_norm, feed_forward/{intermediate, output}, output_layer_norm}
    bert/pooler/{kernel, bias}; classification/{kernel (C, D), bias}       (BertForSequenceClassification)
    predictions_transform_{dense, layernorm}, predictions_output/bias; classification = sentence-order head
                                                                           (BertForPreTraining)

RFA: their modules draw `num_heads` matrices at random from a bank ({head_dim}_{head_dim}.npy) on every
call, inference included, so no fixed model equals theirs call for call. We fix the choice: the first
`num_heads` matrices of the bank given with --random-matrices (the same for every layer), times
sigma / tau, stored in the checkpoint. Without the bank, features are drawn from N(0, 1) and the report
says that outputs differ from any of their runs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models.config import ATTENTION_KINDS, FlurkaConfig, feature_map_of, is_low_rank
from ..models.families import build_model
from .common import ImportReport, TensorPool, UnmappedParametersWarning, finish
from .flax_config import UNSUPPORTED, FlaxConfigError, FlaxRunConfig, read_run_config
from .flax_msgpack import FlaxFileError, find_params, flatten, read_flax_msgpack

__all__ = ["FlaxImportError", "UnmappedParametersWarning", "import_flax_checkpoint", "import_flax_params"]


class FlaxImportError(ValueError):
    pass


@dataclasses.dataclass
class Layout:
    """What the parameter names and shapes say about their model."""

    bert: str  # "bert/" or ""
    layers: list[int]
    has_mha: bool  # FastSelfAttention (…/self_attention/mha/…) rather than flax SelfAttention (VanillaMHA)
    widths: list[int]  # N of the stored downsample matrices, e.g. [128, 512]
    has_sigma: bool  # RFA modules
    eva: bool  # EVA modules (not supported)
    d_model: int
    num_heads: int
    head_dim: int
    n_pos: int

    def attn(self, i: int) -> str:
        return f"{self.bert}encoder_layer_{i}/self_attention" + ("/mha" if self.has_mha else "")


def read_layout(pool: TensorPool) -> Layout:
    names = list(pool.left)
    bert = "bert/" if any(k.startswith("bert/") for k in names) else ""
    layers = sorted({int(m.group(1)) for k in names if (m := re.match(re.escape(bert) + r"encoder_layer_(\d+)/", k))})
    if not layers or layers != list(range(len(layers))):
        raise FlaxImportError(f"expected {bert}encoder_layer_0..N-1, found layers {layers}")
    base = f"{bert}encoder_layer_0/self_attention"
    has_mha = pool.has(f"{base}/mha/query/kernel")
    attn = f"{base}/mha" if has_mha else base
    qk = pool.peek(f"{attn}/query/kernel")
    if qk.ndim != 3 or qk.shape[1] * qk.shape[2] != qk.shape[0]:
        raise FlaxImportError(f"{attn}/query/kernel has shape {qk.shape}; expected (D, H, D/H)")
    widths = sorted({int(m.group(1)) for k in names if (m := re.fullmatch(re.escape(attn) + r"/key_downsample_mat_(\d+)", k))})
    eva = any(re.search(r"/(local_relative_position_bias_table|adaptive_mu_[qk])(/|$)", k) for k in names)
    return Layout(bert=bert, layers=layers, has_mha=has_mha, widths=widths, has_sigma=pool.has(f"{attn}/sigma"),
                  eva=eva, d_model=qk.shape[0], num_heads=qk.shape[1], head_dim=qk.shape[2],
                  n_pos=pool.peek(f"{bert}position_embeddings/embedding").shape[0])


def choose_attention(layout: Layout, attention: str | None, run: FlaxRunConfig) -> tuple[str, str]:
    """The attention kind and one sentence on how it was decided."""
    if layout.eva:
        raise FlaxImportError(UNSUPPORTED["LinEVAMHA" if layout.widths else "EVAMHA"] + " (found its parameters)")
    derived = run.attention_kind()
    if attention is not None and attention not in ATTENTION_KINDS:
        raise FlaxImportError(f"unknown attention {attention!r}; allowed: {', '.join(ATTENTION_KINDS)}")
    if attention and derived and attention != derived:
        raise FlaxImportError(f"--attention {attention} contradicts the run config ({run.attention_type}, "
                              f"up_train={run.up_train}, switch={run.switch} computes {derived})")
    if attention or derived:
        kind = attention or derived
        how = f"--attention {kind}" if attention else (f"{run.attention_type} with up_train={run.up_train}, "
                                                       f"switch={run.switch} (--flax-config) computes {kind}")
    elif not layout.has_mha:
        kind, how = "softmax", "flax SelfAttention (VanillaMHA) parameters"
    elif layout.has_sigma:
        kind = "flurka-rfa" if layout.widths else "kernel-rfa"
        how = f"{'LinRFAMHA' if layout.widths else 'RFAMHA'} parameters (sigma{' and downsample matrices' if layout.widths else ''})"
    elif layout.widths:
        raise FlaxImportError(
            "the parameters fit LinMHA (linformer), LinPerfMHA (flurka-relu; kernel-relu when trained with "
            "up_train=false) and LinRNNsMHA (flurka-elu), which store the same tensors: pass --flax-config "
            "(their run config as JSON) or --attention")
    else:
        raise FlaxImportError("the parameters fit PerfMHA (kernel-relu) and RNNsMHA (kernel-elu), which store the "
                              "same tensors: pass --flax-config (their run config as JSON) or --attention")
    _check_kind_fits(layout, kind)
    return kind, how


def _check_kind_fits(layout: Layout, kind: str) -> None:
    if is_low_rank(kind) and not layout.widths:
        raise FlaxImportError(f"attention {kind} needs key/value_downsample_mat_* parameters; the checkpoint has none")
    if kind.endswith("-rfa") != layout.has_sigma:
        raise FlaxImportError(f"attention {kind} {'needs' if kind.endswith('-rfa') else 'does not use'} the RFA "
                              f"parameter sigma, which the checkpoint {'lacks' if layout.has_sigma is False else 'has'}")
    if (kind == "softmax") == layout.has_mha:
        raise FlaxImportError(f"attention {kind} does not fit the checkpoint's "
                              f"{'FastSelfAttention (mha)' if layout.has_mha else 'flax SelfAttention'} parameters")
    if feature_map_of(kind) not in (None, "relu", "elu", "rfa"):
        raise FlaxImportError(f"the authors' code has no {kind} attention; their kinds: softmax, linformer and "
                              f"the relu, elu and rfa kernel-* / flurka-* kinds")


def choose_seq_len(layout: Layout, kind: str, seq_len: int | None, run: FlaxRunConfig) -> int | None:
    """N of the downsample matrices to import (None: the kind does not downsample)."""
    wanted = seq_len or run.max_seq_length
    if wanted is not None and wanted > layout.n_pos:
        raise FlaxImportError(f"sequence length {wanted} exceeds the {layout.n_pos} position embeddings")
    if not is_low_rank(kind):
        return None
    if wanted is not None:
        if wanted not in layout.widths:
            raise FlaxImportError(f"the checkpoint has downsample matrices for N in {layout.widths}, none for "
                                  f"N={wanted}: their code applies E_N only to inputs of exactly N tokens")
        return wanted
    if len(layout.widths) == 1:
        return layout.widths[0]
    choices = " or ".join(f"--seq-len {w}" for w in layout.widths)
    raise FlaxImportError(
        f"the checkpoint has downsample matrices for N = {' and '.join(map(str, layout.widths))}: their code uses "
        f"E_128 for 128-token inputs and E_512 for 512-token inputs, and each was trained only at its length; "
        f"say which inputs the model will see with {choices} (or --flax-config with max_seq_length)")


def choose_task(pool: TensorPool, task: str | None) -> str:
    """Our task for their checkpoint: the one asked for, else the first head of FLAX_HEADS it has."""
    has = {t: h.marker is None or pool.has(h.marker) for t, h in FLAX_HEADS.items()}
    if task is None:
        return next(t for t in FLAX_HEADS if has[t])
    if task not in FLAX_HEADS:
        raise FlaxImportError(f"their checkpoints are BERT models: task must be {', '.join(list(FLAX_HEADS)[:-1])} "
                              f"or {list(FLAX_HEADS)[-1]}, not {task!r}")
    if not has[task]:
        raise FlaxImportError(f"task {task} needs {FLAX_HEADS[task].needs} parameters; the checkpoint has none")
    return task


def rfa_features(layout: Layout, random_matrices: np.ndarray | None, seed: int,
                 notes: list[str]) -> np.ndarray:
    """[H, P, d] matrices W (before sigma / tau): the first num_heads of their bank, or fresh N(0, 1)."""
    h, d = layout.num_heads, layout.head_dim
    if random_matrices is None:
        notes.append(f"RFA random features: none given (--random-matrices {d}_{d}.npy, their bank); drew fresh "
                     f"N(0, 1) features, so outputs differ from any of their runs until fine-tuned")
        return torch.randn(h, d, d, generator=torch.Generator().manual_seed(seed)).numpy()
    if random_matrices.ndim != 3 or random_matrices.shape[2] != d or random_matrices.shape[0] < h:
        raise FlaxImportError(f"random matrices of shape {random_matrices.shape}; expected [>= {h}, P, {d}] "
                              f"(their {d}_{d}.npy bank)")
    notes.append(f"RFA random features: the first {h} of the {random_matrices.shape[0]} matrices of the bank, in "
                 f"every layer (their code draws {h} at random on every call, inference included)")
    return np.asarray(random_matrices[:h], dtype=np.float32)


def config_fields(layout: Layout, pool: TensorPool, kind: str, task: str, width: int | None, n_max: int,
                  run: FlaxRunConfig, hidden_act: str | None, notes: list[str]) -> dict[str, Any]:
    b = layout.bert
    act = hidden_act or run.hidden_act
    if act is None:
        act = "gelu_new"
        notes.append("hidden_act not given: gelu_new (tanh GELU) as in their pre-training configs; pass "
                     "--hidden-act or --flax-config if the model was trained with another")
    types = pool.peek(f"{b}type_embeddings/embedding").shape[0] if pool.has(f"{b}type_embeddings/embedding") else 0
    low_rank = pool.peek(f"{layout.attn(0)}/key_downsample_mat_{width}").shape[0] if width else min(32, n_max)
    fields: dict[str, Any] = dict(
        task=task, attention=kind, num_layers=len(layout.layers), hidden_size=layout.d_model,
        num_heads=layout.num_heads, low_rank=low_rank, max_seq_len=n_max, num_features=layout.head_dim,
        vocab_size=pool.peek(f"{b}word_embeddings/embedding").shape[0],
        intermediate_size=pool.peek(f"{b}encoder_layer_0/feed_forward/intermediate/kernel").shape[1],
        hidden_act=act, layer_norm_eps=float(run.layer_norm_eps or 1e-12), type_vocab_size=types if types > 1 else 0,
        # FastSelfAttention never applies the padding mask; flax SelfAttention (VanillaMHA) does.
        mask_keys_in_attention=not layout.has_mha, num_labels=2, tie_word_embeddings=False,
    )
    fields.update(FLAX_HEADS[task].fields(pool))
    if run.type_vocab_size is not None and run.type_vocab_size != types:
        raise FlaxImportError(f"--flax-config says type_vocab_size={run.type_vocab_size}; the checkpoint has {types}")
    return fields


def map_embeddings(pool: TensorPool, layout: Layout, config: FlurkaConfig, notes: list[str]) -> None:
    b = layout.bert
    pool.copy(f"{b}word_embeddings/embedding", "encoder.word_embeddings.weight")
    pos_name = f"{b}position_embeddings/embedding"
    pos, sources = pool.take(pos_name)[: config.max_seq_len], [pos_name]
    if layout.n_pos > config.max_seq_len:
        notes.append(f"position embeddings: rows 0..{config.max_seq_len - 1} of {layout.n_pos} (N_max)")
    type_name = f"{b}type_embeddings/embedding"
    if pool.has(type_name):
        types = pool.take(type_name)
        if config.type_vocab_size:
            pool.put("encoder.token_type_embeddings.weight", types, type_name)
        else:  # a single type row is added to every token: folding it into the positions is exact
            pos, sources = pos + types[0], [*sources, type_name]
    pool.put("encoder.position_embeddings", pos, *sources)
    _norm(pool, f"{b}embeddings_layer_norm", "encoder.norm")


def map_layer(pool: TensorPool, layout: Layout, i: int, width: int | None, rfa: np.ndarray | None,
              tau: float) -> None:
    layer, attn, ours = f"{layout.bert}encoder_layer_{i}", layout.attn(i), f"encoder.layers.{i}"
    d = layout.d_model
    for name in ("query", "key", "value"):  # DenseGeneral kernel (D, H, d) -> torch Linear weight (H*d, D)
        pool.put(f"{ours}.attention.{name}.weight", pool.take(f"{attn}/{name}/kernel").reshape(d, -1).T,
                 f"{attn}/{name}/kernel")
        pool.put(f"{ours}.attention.{name}.bias", pool.take(f"{attn}/{name}/bias").reshape(-1), f"{attn}/{name}/bias")
    pool.put(f"{ours}.attention.out.weight", pool.take(f"{attn}/out/kernel").reshape(-1, d).T, f"{attn}/out/kernel")
    pool.copy(f"{attn}/out/bias", f"{ours}.attention.out.bias")
    for w in layout.widths:
        for src, dst in (("key", "E_K"), ("value", "E_V")):
            name = f"{attn}/{src}_downsample_mat_{w}"
            if w == width:
                pool.copy(name, f"{ours}.attention.{dst}")
            else:
                pool.drop(name, f"used by their code only for {w}-token inputs" if width else
                          "not used: this attention kind does not downsample keys and values")
    if rfa is not None:
        sigma = pool.take(f"{attn}/sigma").reshape(layout.num_heads, 1, layout.head_dim)
        pool.put(f"{ours}.attention.feature_proj", sigma * rfa / tau, f"{attn}/sigma")
    _norm(pool, f"{layer}/self_attention_layer_norm", f"{ours}.norm1")
    _dense(pool, f"{layer}/feed_forward/intermediate", f"{ours}.ffn.0")
    _dense(pool, f"{layer}/feed_forward/output", f"{ours}.ffn.2")
    _norm(pool, f"{layer}/output_layer_norm", f"{ours}.norm2")


def map_heads(pool: TensorPool, layout: Layout, task: str) -> None:
    pooler = f"{layout.bert}pooler"
    FLAX_HEADS[task].map(pool, pooler)
    for name in [n for n in list(pool.left) if n.startswith((f"{pooler}/", "classification/", "predictions_"))]:
        pool.drop(name, FLAX_HEADS[task].unused)


def _classifier(pool: TensorPool, pooler: str) -> None:
    _dense(pool, pooler, "pooler.0")
    pool.copy("classification/kernel", "classifier.weight")  # their OutputProjection stores (C, D), as torch
    pool.copy("classification/bias", "classifier.bias")


def _mlm(pool: TensorPool, pooler: str) -> None:
    _dense(pool, "predictions_transform_dense", "transform.0")
    _norm(pool, "predictions_transform_layernorm", "transform.2")
    pool.copy("predictions_output/bias", "decoder_bias")  # the output matrix is the word embeddings (tied)


@dataclasses.dataclass(frozen=True)
class FlaxHead:
    """One head of their BERT models, as our task: how it is recognised, configured and mapped."""

    marker: str | None  # a parameter only this head has (None: every checkpoint has it)
    needs: str  # the parameters it needs, for the error message
    fields: Callable[[TensorPool], dict[str, Any]]  # FlurkaConfig fields of the head
    map: Callable[[TensorPool, str], None]  # (pool, pooler prefix): the head's tensors into place
    unused: str  # why the other heads' tensors are dropped


# In the order a checkpoint's head is guessed when no task is given.
FLAX_HEADS: dict[str, FlaxHead] = {
    "mlm": FlaxHead("predictions_output/bias", "predictions_output", lambda pool: {"tie_word_embeddings": True},
                    _mlm, "pooler and sentence-order head of pre-training: not outputs of the masked-LM model"),
    "classify": FlaxHead("classification/kernel", "classification",
                         lambda pool: {"num_labels": pool.peek("classification/kernel").shape[0]}, _classifier,
                         "masked-LM head not used by the classifier"),
    "encoder": FlaxHead(None, "", lambda pool: {}, lambda pool, pooler: None, "head not used by the encoder task"),
}


def _dense(pool: TensorPool, src: str, ours: str) -> None:  # flax Dense kernel (in, out); torch (out, in)
    pool.copy(f"{src}/kernel", f"{ours}.weight", transpose=True)
    pool.copy(f"{src}/bias", f"{ours}.bias")


def _norm(pool: TensorPool, src: str, ours: str) -> None:
    pool.copy(f"{src}/scale", f"{ours}.weight")
    pool.copy(f"{src}/bias", f"{ours}.bias")


# ----------------------------------------------------------------------------------------------
# Entry points


def import_flax_params(
    tree: dict[str, Any], *, attention: str | None = None, task: str | None = None, seq_len: int | None = None,
    hidden_act: str | None = None, run_config: FlaxRunConfig | None = None, random_matrices: np.ndarray | None = None,
    tau: float = 1.0, seed: int = 0, allow_unmapped: bool = False,
) -> tuple[nn.Module, ImportReport]:
    """Our model from their parameter tree (raw params, {'params': ...} or a TrainState); FlaxImportError
    names every parameter without a place, every ambiguity and every unsupported module."""
    run = run_config or FlaxRunConfig()
    try:
        params, skipped = find_params(tree)
        pool = TensorPool(flatten(params), FlaxImportError)
        layout = read_layout(pool)
        kind, how = choose_attention(layout, attention, run)
    except (FlaxFileError, FlaxConfigError) as e:
        raise FlaxImportError(str(e)) from None
    notes = [f"attention {kind}: {how}"]
    if skipped:
        notes.append(f"training state: imported params only; not imported: {', '.join(sorted(skipped))}")
    task = choose_task(pool, task)
    width = choose_seq_len(layout, kind, seq_len, run)
    if width:
        notes.append(f"downsample matrices E_{width}: their code applies them to inputs of exactly {width} tokens "
                     f"(pad to {width}, as their training did); ours also slice E[:, :N] for shorter inputs")
    n_max = width or seq_len or run.max_seq_length or layout.n_pos
    rfa = rfa_features(layout, random_matrices, seed, notes) if kind.endswith("-rfa") else None
    config = FlurkaConfig(**config_fields(layout, pool, kind, task, width, n_max, run, hidden_act, notes))
    if rfa is not None:
        config = config.replace(num_features=rfa.shape[1])
    model = build_model(config)
    map_embeddings(pool, layout, config, notes)
    for i in layout.layers:
        map_layer(pool, layout, i, width, rfa, tau)
    map_heads(pool, layout, task)
    unmapped = finish(model, pool, what=f"a {task} model with {kind}", allow_unmapped=allow_unmapped,
                      error=FlaxImportError)
    report = ImportReport(config=config, source="flax", mapped=pool.mapped, dropped=pool.dropped,
                          unmapped=unmapped, notes=notes)
    return model.eval(), report


def import_flax_checkpoint(
    path: str | Path, output: str | Path | None = None, *, flax_config: str | Path | dict[str, Any] | None = None,
    attention: str | None = None, task: str | None = None, seq_len: int | None = None, hidden_act: str | None = None,
    random_matrices: str | Path | np.ndarray | None = None, tau: float = 1.0, allow_unmapped: bool = False,
) -> tuple[nn.Module, ImportReport]:
    """Read FILE.msgpack (and their run config, `flax_config`), map it, save_pretrained to `output` when given."""
    from ..models import save_pretrained

    try:
        run = read_run_config(flax_config) if flax_config is not None else FlaxRunConfig()
        tree = read_flax_msgpack(path)
    except (FlaxFileError, FlaxConfigError) as e:
        raise FlaxImportError(str(e)) from None
    if isinstance(random_matrices, str | Path):
        try:
            random_matrices = np.load(random_matrices, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise FlaxImportError(f"--random-matrices {random_matrices}: not a readable .npy array: {e}") from None
    model, report = import_flax_params(tree, attention=attention, task=task, seq_len=seq_len, hidden_act=hidden_act,
                                       run_config=run, random_matrices=random_matrices, tau=tau,
                                       allow_unmapped=allow_unmapped)
    if output is not None:
        save_pretrained(model, output)
    return model, report
