"""Import a checkpoint of the authors' JAX/Flax implementation (the `sabertooth` code base).

The file is flax.serialization msgpack (`flax.serialization.to_bytes(params)` or a training
checkpoint holding `params` / `target`). It is decoded with `msgpack` and flax's ndarray extension
format, re-implemented here so that jax is not needed and nothing is ever unpickled.

Layout (sabertooth's BertModel, post-norm BERT):

    bert/word_embeddings/embedding (V, D)   bert/position_embeddings/embedding (N, D)
    bert/type_embeddings/embedding (T, D)   bert/embeddings_layer_norm/{scale, bias}
    bert/encoder_layer_{i}/self_attention[/mha]/{query, key, value}/{kernel (D, H, d), bias (H, d)}
                                            .../out/{kernel (H, d, D), bias (D,)}
                                            .../{key,value}_downsample_mat[_128|_512] (k, N)
                                            .../sigma (H, 1, d)             (RFA variants)
    bert/encoder_layer_{i}/self_attention_layer_norm, feed_forward/{intermediate, output}, output_layer_norm
    bert/pooler/{kernel, bias}, classification/{kernel (C, D), bias}         (sequence classification)
    predictions_transform_dense, predictions_transform_layernorm, predictions_output/bias   (masked LM)

Attention kinds: LinPerfMHA (Linformer + Performer's ReLU kernel) -> flurka-relu, Linformer + Linear
Transformer -> flurka-elu, LinRFAMHA -> flurka-rfa, RFAMHA -> kernel-rfa, flax SelfAttention -> softmax.
sabertooth does not store RFA's random matrices: it loads them from `{head_dim}_{proj_dim}.npy`
([num_matrices, P, d]) and draws `num_heads` of them on every call. An export needs fixed features,
so we take the first `num_heads` matrices of that file (the RFA reference code's eval-mode choice)
and store feature_proj = sigma * W / tau in the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models.config import ATTENTION_KINDS, FlurkaConfig, is_low_rank
from ..models.families import build_model


class FlaxImportError(ValueError):
    pass


class UnmappedParametersWarning(UserWarning):
    pass


# ----------------------------------------------------------------------------------------------
# Reading flax msgpack (the format of flax.serialization.to_bytes / msgpack_serialize)

_EXT_NDARRAY, _EXT_COMPLEX, _EXT_NPSCALAR = 1, 2, 3


def _ndarray_from_bytes(data: bytes) -> np.ndarray:
    import msgpack

    shape, dtype_name, buffer = msgpack.unpackb(data, raw=True)
    if dtype_name == b"bfloat16":
        # bfloat16 has no numpy dtype: widen the upper 16 bits of each float32 by hand.
        raw = np.frombuffer(buffer, dtype=np.uint16).astype(np.uint32) << 16
        return raw.view(np.float32).reshape(shape)
    return np.frombuffer(buffer, dtype=np.dtype(dtype_name.decode())).reshape(shape).copy()


def _ext_hook(code: int, data: bytes) -> Any:
    import msgpack

    if code == _EXT_NDARRAY:
        return _ndarray_from_bytes(data)
    if code == _EXT_NPSCALAR:
        return _ndarray_from_bytes(data)[()]
    if code == _EXT_COMPLEX:
        re_, im = msgpack.unpackb(data)
        return complex(re_, im)
    return msgpack.ExtType(code, data)


def _unchunk(tree: Any) -> Any:
    """flax splits arrays over 1 GiB into {'__msgpack_chunked_array__', 'shape', 'chunks'} dicts."""
    if isinstance(tree, dict):
        if "__msgpack_chunked_array__" in tree:
            shape = tuple(tree["shape"][str(i)] for i in range(len(tree["shape"])))
            chunks = [tree["chunks"][str(i)] for i in range(len(tree["chunks"]))]
            return np.concatenate(chunks).reshape(shape)
        return {k: _unchunk(v) for k, v in tree.items()}
    return tree


def read_flax_msgpack(path: str | Path) -> dict[str, Any]:
    """The nested dict of numpy arrays stored in a flax msgpack file."""
    try:
        import msgpack
    except ImportError:
        raise ImportError("reading flax checkpoints needs msgpack: pip install msgpack "
                          "(or pip install 'flurka-export[flax]')") from None
    data = Path(path).read_bytes()
    try:
        tree = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as e:
        raise FlaxImportError(f"{path} is not a flax msgpack checkpoint: {e}") from None
    if not isinstance(tree, dict):
        raise FlaxImportError(f"{path} holds a {type(tree).__name__}, not a flax parameter tree")
    return _unchunk(tree)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        name = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, name))
        elif isinstance(v, np.ndarray):
            out[name] = v
        elif isinstance(v, np.generic | int | float):
            out[name] = np.asarray(v)
    return out


def _find_params(tree: dict[str, Any]) -> dict[str, Any]:
    """The parameter tree inside a raw params dict, {'params': ...}, or a training checkpoint."""
    for _ in range(4):
        if any(k in tree for k in ("bert", "word_embeddings", "encoder_layer_0")):
            return tree
        for key in ("params", "target"):
            if isinstance(tree.get(key), dict):
                tree = tree[key]
                break
        else:
            break
    raise FlaxImportError(f"no sabertooth BERT parameters found (top-level keys: {sorted(tree)[:10]})")


# ----------------------------------------------------------------------------------------------
# Mapping


@dataclasses.dataclass
class ImportReport:
    config: FlurkaConfig
    mapped: list[tuple[str, str]]  # (flax path, our state_dict name)
    unmapped: list[str]  # flax paths we could not place: an error unless allow_unmapped
    notes: list[str]  # choices made (folded type embeddings, chosen downsample width, RFA features)

    def summary(self) -> str:
        lines = [f"imported {len(self.mapped)} flax parameters as attention={self.config.attention} "
                 f"task={self.config.task} layers={self.config.num_layers} hidden={self.config.hidden_size} "
                 f"heads={self.config.num_heads} k={self.config.low_rank} N_max={self.config.max_seq_len}"]
        lines += [f"  note: {n}" for n in self.notes]
        if self.unmapped:
            lines.append(f"  unmapped (not imported): {', '.join(self.unmapped)}")
        return "\n".join(lines)


class _Params:
    """Flat flax params; `take` consumes one, so whatever is left at the end is reported as unmapped."""

    def __init__(self, flat: dict[str, np.ndarray]) -> None:
        self.left = dict(flat)

    def has(self, path: str) -> bool:
        return path in self.left

    def peek(self, path: str) -> np.ndarray:
        if path not in self.left:
            raise FlaxImportError(f"the checkpoint has no parameter {path}")
        return self.left[path]

    def take(self, path: str) -> np.ndarray:
        arr = self.peek(path)
        del self.left[path]
        return np.asarray(arr, dtype=np.float32)


def _attention_prefix(p: _Params, layer: str) -> str:
    base = f"{layer}/self_attention"
    return f"{base}/mha" if p.has(f"{base}/mha/query/kernel") else base


def _downsample_widths(p: _Params, attn: str) -> list[int | None]:
    widths: list[int | None] = []
    for path in p.left:
        m = re.fullmatch(re.escape(attn) + r"/key_downsample_mat(?:_(\d+))?", path)
        if m:
            widths.append(int(m.group(1)) if m.group(1) else None)
    return widths


def _infer_attention(p: _Params, attn: str, has_mha: bool) -> str | None:
    low_rank = bool(_downsample_widths(p, attn))
    rfa = p.has(f"{attn}/sigma")
    if rfa:
        return "flurka-rfa" if low_rank else "kernel-rfa"
    if not has_mha:
        return "softmax"  # flax.linen.SelfAttention (sabertooth's VanillaMHA)
    return None  # Linformer+Performer, Linformer+Linear-Transformer and Linformer look alike


def import_flax_params(
    tree: dict[str, Any],
    *,
    attention: str | None = None,
    task: str | None = None,
    seq_len: int | None = None,
    random_matrices: np.ndarray | None = None,
    tau: float = 1.0,
    config_overrides: dict[str, Any] | None = None,
    allow_unmapped: bool = False,
) -> tuple[nn.Module, ImportReport]:
    """Build our model from a sabertooth parameter tree; raise FlaxImportError naming every parameter
    that has no place in it (or warn, with allow_unmapped)."""
    params = _find_params(tree)
    p = _Params(flatten(params))
    bert = "bert/" if any(k.startswith("bert/") for k in p.left) else ""
    notes: list[str] = []
    overrides = dict(config_overrides or {})

    layers = sorted({int(m.group(1)) for k in p.left if (m := re.match(re.escape(bert) + r"encoder_layer_(\d+)/", k))})
    if not layers or layers != list(range(len(layers))):
        raise FlaxImportError(f"expected {bert}encoder_layer_0..N-1, found layers {layers}")
    attn0 = _attention_prefix(p, f"{bert}encoder_layer_0")
    qk = p.peek(f"{attn0}/query/kernel")
    if qk.ndim != 3:
        raise FlaxImportError(f"{attn0}/query/kernel has shape {qk.shape}; expected (D, H, d)")
    d_model, n_heads, head_dim = qk.shape
    if n_heads * head_dim != d_model:
        raise FlaxImportError(f"query kernel {qk.shape}: H*d = {n_heads * head_dim} differs from D = {d_model}")
    vocab, _ = p.peek(f"{bert}word_embeddings/embedding").shape
    n_pos, _ = p.peek(f"{bert}position_embeddings/embedding").shape
    ffn = p.peek(f"{bert}encoder_layer_0/feed_forward/intermediate/kernel").shape[1]

    has_mha = attn0.endswith("/mha")
    inferred = _infer_attention(p, attn0, has_mha)
    attention = attention or overrides.pop("attention", None) or inferred
    overrides.pop("attention", None)
    if attention is None:
        raise FlaxImportError(
            "the attention kind cannot be told from the parameters alone (Linformer+Performer, "
            "Linformer+Linear-Transformer and Linformer have the same ones): pass --attention "
            "flurka-relu (LinPerfMHA), flurka-elu (Linformer + elu) or linformer")
    if attention not in ATTENTION_KINDS:
        raise FlaxImportError(f"unknown attention {attention!r}; allowed: {', '.join(ATTENTION_KINDS)}")
    if inferred and attention != inferred:
        notes.append(f"attention {attention} given; the parameters suggest {inferred}")

    if task is None:
        task = overrides.pop("task", None) or ("mlm" if p.has("predictions_output/bias") else "classify")
    overrides.pop("task", None)
    if task not in ("classify", "mlm"):
        raise FlaxImportError(f"sabertooth checkpoints are BERT models: task must be classify or mlm, not {task!r}")

    # Low rank: which stored E width to use (sabertooth keeps one pair per supported length, 128 and 512).
    max_seq_len = n_pos
    low_rank = overrides.pop("low_rank", 1)
    width_suffix = ""
    if is_low_rank(attention):
        widths = _downsample_widths(p, attn0)
        if not widths:
            raise FlaxImportError(f"attention {attention} needs key/value_downsample_mat parameters; {attn0} has none")
        numbered = sorted(w for w in widths if w is not None)
        if seq_len is not None:
            if seq_len not in numbered:
                raise FlaxImportError(f"--seq-len {seq_len}: the checkpoint has downsample matrices for {numbered}")
            width = seq_len
        else:
            width = max(numbered) if numbered else None
        width_suffix = f"_{width}" if width is not None else ""
        low_rank, max_seq_len = p.peek(f"{attn0}/key_downsample_mat{width_suffix}").shape
        others = [w for w in numbered if w != width]
        if others:
            notes.append(f"using the downsample matrices for N={max_seq_len}; sabertooth applies them only to "
                         f"inputs of exactly {max_seq_len} tokens (ours slice E[:, :N] for N <= {max_seq_len}); "
                         f"the matrices for N={others} are not imported (choose with --seq-len)")
        if max_seq_len > n_pos:
            raise FlaxImportError(f"downsample matrices cover {max_seq_len} tokens but position embeddings only {n_pos}")
    n_classes = p.peek("classification/kernel").shape[0] if p.has("classification/kernel") else 2

    feature_proj: list[np.ndarray] | None = None
    num_features = overrides.pop("num_features", head_dim)
    if attention.endswith("-rfa"):
        if random_matrices is not None:
            if random_matrices.ndim != 3 or random_matrices.shape[2] != head_dim or random_matrices.shape[0] < n_heads:
                raise FlaxImportError(f"random matrices of shape {random_matrices.shape}; expected "
                                      f"[>= {n_heads}, P, {head_dim}] (sabertooth's {head_dim}_P.npy)")
            w = np.asarray(random_matrices[:n_heads], dtype=np.float32)
            notes.append(f"RFA random features: the first {n_heads} of {random_matrices.shape[0]} given matrices "
                         f"(P={w.shape[1]}), times sigma / tau (tau={tau})")
        else:
            g = torch.Generator().manual_seed(int(overrides.get("seed", 0)))
            w = torch.randn(n_heads, num_features, head_dim, generator=g).numpy()
            notes.append("RFA random features: sabertooth does not store them and none were given "
                         "(--random-matrices FILE.npy); drew fresh N(0, 1) features, so outputs differ from any "
                         "sabertooth run until fine-tuned")
        num_features = w.shape[1]
        feature_proj = []
        for i in layers:
            sigma = p.take(f"{_attention_prefix(p, f'{bert}encoder_layer_{i}')}/sigma")
            feature_proj.append(sigma.reshape(n_heads, 1, head_dim) * w / tau)

    fields: dict[str, Any] = dict(
        task=task, attention=attention, num_layers=len(layers), hidden_size=d_model, num_heads=n_heads,
        low_rank=low_rank, max_seq_len=max_seq_len, num_features=num_features, vocab_size=vocab,
        num_labels=n_classes, intermediate_size=ffn,
    )
    fields.update(overrides)
    config = FlurkaConfig(**fields)
    model = build_model(config)
    state: dict[str, torch.Tensor] = {}
    mapped: list[tuple[str, str]] = []

    def put(ours: str, arr: np.ndarray, *paths: str) -> None:
        state[ours] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        mapped.extend((path, ours) for path in paths)

    def dense(path: str, ours: str) -> None:  # flax Dense kernel is (in, out); torch Linear weight is (out, in)
        put(f"{ours}.weight", p.take(f"{path}/kernel").T, f"{path}/kernel")
        put(f"{ours}.bias", p.take(f"{path}/bias"), f"{path}/bias")

    def norm(path: str, ours: str) -> None:
        put(f"{ours}.weight", p.take(f"{path}/scale"), f"{path}/scale")
        put(f"{ours}.bias", p.take(f"{path}/bias"), f"{path}/bias")

    enc = "encoder"
    put(f"{enc}.word_embeddings.weight", p.take(f"{bert}word_embeddings/embedding"), f"{bert}word_embeddings/embedding")
    pos = p.take(f"{bert}position_embeddings/embedding")
    pos_paths = [f"{bert}position_embeddings/embedding"]
    if p.has(f"{bert}type_embeddings/embedding"):
        types = p.take(f"{bert}type_embeddings/embedding")
        pos = pos + types[0]  # exact for type_ids == 0, the only segment a single-input model sees
        pos_paths.append(f"{bert}type_embeddings/embedding")
        notes.append(f"type_embeddings row 0 folded into the position embeddings (our models take no type_ids; "
                     f"rows 1..{types.shape[0] - 1} are not imported)" if types.shape[0] > 1 else
                     "type_embeddings folded into the position embeddings")
    if n_pos > max_seq_len:
        notes.append(f"position embeddings {n_pos} -> {max_seq_len} rows (N_max of the downsample matrices)")
    put(f"{enc}.position_embeddings", pos[:max_seq_len], *pos_paths)
    norm(f"{bert}embeddings_layer_norm", f"{enc}.norm")

    for i in layers:
        layer = f"{bert}encoder_layer_{i}"
        attn = _attention_prefix(p, layer)
        ours = f"{enc}.layers.{i}"
        for name in ("query", "key", "value"):
            kernel = p.take(f"{attn}/{name}/kernel")  # (D, H, d)
            bias = p.take(f"{attn}/{name}/bias")  # (H, d)
            put(f"{ours}.attention.{name}.weight", kernel.reshape(d_model, -1).T, f"{attn}/{name}/kernel")
            put(f"{ours}.attention.{name}.bias", bias.reshape(-1), f"{attn}/{name}/bias")
        kernel = p.take(f"{attn}/out/kernel")  # (H, d, D)
        put(f"{ours}.attention.out.weight", kernel.reshape(-1, d_model).T, f"{attn}/out/kernel")
        put(f"{ours}.attention.out.bias", p.take(f"{attn}/out/bias"), f"{attn}/out/bias")
        if is_low_rank(attention):
            for src, dst in (("key", "E_K"), ("value", "E_V")):
                path = f"{attn}/{src}_downsample_mat{width_suffix}"
                put(f"{ours}.attention.{dst}", p.take(path), path)
        if feature_proj is not None:
            put(f"{ours}.attention.feature_proj", feature_proj[i], f"{attn}/sigma")
        norm(f"{layer}/self_attention_layer_norm", f"{ours}.norm1")
        dense(f"{layer}/feed_forward/intermediate", f"{ours}.ffn.0")
        dense(f"{layer}/feed_forward/output", f"{ours}.ffn.2")
        norm(f"{layer}/output_layer_norm", f"{ours}.norm2")

    if task == "classify":
        if p.has(f"{bert}pooler/kernel"):
            dense(f"{bert}pooler", "pooler.0")
        if p.has("classification/kernel"):  # sabertooth's OutputProjection stores (n_out, D), like torch
            put("classifier.weight", p.take("classification/kernel"), "classification/kernel")
            put("classifier.bias", p.take("classification/bias"), "classification/bias")
    elif task == "mlm":
        if p.has("predictions_transform_dense/kernel"):
            dense("predictions_transform_dense", "transform.0")
            norm("predictions_transform_layernorm", "transform.2")
            # The output projection is tied to the word embeddings in sabertooth.
            put("decoder.weight", state[f"{enc}.word_embeddings.weight"].numpy())
            put("decoder.bias", p.take("predictions_output/bias"), "predictions_output/bias")

    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    # Random-feature buffers of kinds without sigma, and dropped-by-choice downsample widths, are not errors.
    missing = [m for m in missing if not m.endswith("feature_proj")]
    if missing:
        raise FlaxImportError(f"the checkpoint has nothing for: {', '.join(missing)}")
    for name, t in state.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise FlaxImportError(f"{name}: shape {tuple(t.shape)} from the checkpoint, "
                                  f"{tuple(expected[name].shape)} expected")
    skipped = [k for k in p.left if re.search(r"_downsample_mat_\d+$", k)]
    unmapped = sorted(k for k in p.left if k not in skipped)
    if unmapped:
        msg = f"{len(unmapped)} flax parameters have no place in a {task} model with {attention}: {', '.join(unmapped)}"
        if not allow_unmapped:
            raise FlaxImportError(msg + " (pass --allow-unmapped to import anyway)")
        warnings.warn(msg, UnmappedParametersWarning, stacklevel=2)
    model.load_state_dict(state, strict=False)
    return model.eval(), ImportReport(config=config, mapped=mapped, unmapped=unmapped, notes=notes)


def import_flax_checkpoint(
    path: str | Path,
    output: str | Path | None = None,
    *,
    config: str | Path | dict[str, Any] | None = None,
    attention: str | None = None,
    task: str | None = None,
    seq_len: int | None = None,
    random_matrices: str | Path | np.ndarray | None = None,
    tau: float = 1.0,
    allow_unmapped: bool = False,
) -> tuple[nn.Module, ImportReport]:
    """Read FILE.msgpack, map it onto our model, and save_pretrained it to `output` when given.

    `config` (a JSON file or dict of FlurkaConfig fields) fills what the shapes cannot tell
    (attention, layer_norm_eps, seed, ...); `random_matrices` is sabertooth's `{d}_{P}.npy` for RFA.
    """
    from ..models import save_pretrained

    overrides: dict[str, Any] = {}
    if isinstance(config, dict):
        overrides = dict(config)
    elif config is not None:
        overrides = json.loads(Path(config).read_text())
        if not isinstance(overrides, dict):
            raise FlaxImportError(f"{config} must hold a JSON object of FlurkaConfig fields")
    if isinstance(random_matrices, str | Path):
        random_matrices = np.load(random_matrices, allow_pickle=False)
    tree = read_flax_msgpack(path)
    model, report = import_flax_params(tree, attention=attention, task=task, seq_len=seq_len,
                                       random_matrices=random_matrices, tau=tau, config_overrides=overrides,
                                       allow_unmapped=allow_unmapped)
    if output is not None:
        save_pretrained(model, output)
    return model, report
