"""Reading flax msgpack files (`flax.serialization.to_bytes` / `msgpack_serialize`, which is also what
`flax.training.checkpoints.save_checkpoint` writes) with msgpack alone: no jax, nothing unpickled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

_EXT_NDARRAY, _EXT_COMPLEX, _EXT_NPSCALAR = 1, 2, 3


class FlaxFileError(ValueError):
    pass


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
    import msgpack

    path = Path(path)
    if not path.is_file():
        raise FlaxFileError(f"{path} does not exist or is not a file (expected a flax msgpack checkpoint)")
    try:
        tree = msgpack.unpackb(path.read_bytes(), ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError) as e:
        raise FlaxFileError(f"{path} is not a flax msgpack checkpoint: {e}") from None
    if not isinstance(tree, dict):
        raise FlaxFileError(f"{path} holds a {type(tree).__name__}, not a flax parameter tree")
    return _unchunk(tree)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """{'a': {'b': x}} -> {'a/b': x} (arrays and numbers only)."""
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


def find_params(tree: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The BERT parameter tree inside raw params, {'params': ...}, a TrainState (step, params, opt_state,
    ...) or an old flax.optim checkpoint ({'target': ...}); plus a note on what else the file held."""
    skipped: list[str] = []
    for _ in range(4):
        if any(k in tree for k in ("bert", "word_embeddings", "encoder_layer_0")):
            return tree, skipped
        key = next((k for k in ("params", "target") if isinstance(tree.get(k), dict)), None)
        if key is None:
            break
        skipped += [k for k in tree if k != key]
        tree = tree[key]
    raise FlaxFileError(f"no sabertooth BERT parameters found (top-level keys: {sorted(tree)[:10]}); expected "
                        f"'bert' or 'params'/'target' holding it")
