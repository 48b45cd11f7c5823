"""Triton Python-backend model for an ONNX model exported by flurka-export (copied as `model.py`).

Self-contained on purpose: it imports only numpy, onnxruntime and Triton's `triton_python_backend_utils`,
so the repository also runs in a stock Triton container (`pip install onnxruntime` there).
Settings come from config.pbtxt `parameters` (all strings):

- onnx_file: the model file in the version directory (default model.onnx)
- intra_op_threads: ONNX Runtime threads per model instance (0 = ONNX Runtime's default)
- allow_spinning: "1" lets idle ONNX Runtime threads spin (its default); "0" (ours) makes them sleep, which leaves
  the cores to Triton's frontend and other processes
- max_seq_len, vocab_size: limits checked on every request (empty: not checked)
- pad_across_lengths: "true" when the model's outputs do not depend on padding (mask 0 tokens), so
  requests of different lengths are padded and run as one batch; "false" runs each length on its own.
- sequence_inputs, per_token_outputs, token_input, mask_input: the family spec's serving I/O (comma lists /
  names): the [batch, sequence] inputs (zero-padded), the outputs with one row per token (padding cut off),
  the token ids (checked against vocab_size) and the 0/1 mask.

Each request is checked on its own; a bad one gets an error response naming the problem and the others in
the same batch are served. Tensors cross the backend through DLPack, which works whatever numpy ABI the
backend stub was built for (the numpy path of stubs built for numpy 1 misreads numpy 2 arrays).
"""

from __future__ import annotations

import ctypes
import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

# The stub takes ownership of a DLPack capsule (it calls the deleter) but marks it with a name numpy does not
# know; marking it "used_dltensor" tells numpy's capsule destructor to leave it alone.
_USED_CAPSULE = b"used_dltensor"
_set_capsule_name = ctypes.pythonapi.PyCapsule_SetName
_set_capsule_name.argtypes = [ctypes.py_object, ctypes.c_char_p]
_set_capsule_name.restype = ctypes.c_int


class RequestError(ValueError):
    """A bad request: its message goes back to the client."""


def _to_triton(name: str, array: np.ndarray) -> pb_utils.Tensor:
    capsule = np.ascontiguousarray(array).__dlpack__()
    tensor = pb_utils.Tensor.from_dlpack(name, capsule)
    _set_capsule_name(capsule, _USED_CAPSULE)
    return tensor


def _from_triton(request: pb_utils.InferenceRequest, name: str) -> np.ndarray | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else np.array(np.from_dlpack(tensor), copy=True)


def _error(message: str) -> pb_utils.InferenceResponse:
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(params.get("intra_op_threads") or 0)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if params.get("allow_spinning", "0") != "1":  # idle threads sleep: the server's frontend shares the cores
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(os.path.join(version_dir, params.get("onnx_file") or "model.onnx"),
                                            opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        names = lambda key: [n for n in params.get(key, "").split(",") if n]  # noqa: E731
        self.sequence_inputs = [n for n in names("sequence_inputs") if n in self.input_names]
        self.per_token_outputs = set(names("per_token_outputs"))
        self.token_input = params.get("token_input") or None
        self.mask_input = params.get("mask_input") or None
        self.is_text = bool(self.sequence_inputs)  # requests have a sequence length
        self.max_seq_len = int(params["max_seq_len"]) if params.get("max_seq_len") else None
        self.vocab_size = int(params["vocab_size"]) if params.get("vocab_size") else None
        self.pad_across_lengths = params.get("pad_across_lengths") == "true"

    # -- one request ---------------------------------------------------------------------------------------

    def _read(self, request: pb_utils.InferenceRequest) -> dict[str, np.ndarray]:
        if hasattr(request, "is_cancelled") and request.is_cancelled():
            raise RequestError("request cancelled by the client")
        arrays = {name: _from_triton(request, name) for name in self.input_names}
        missing = [n for n, a in arrays.items() if a is None]
        if missing:
            raise RequestError(f"missing input {', '.join(missing)}; this model takes {', '.join(self.input_names)}")
        if self.is_text:
            self._check_sequences(arrays)
        return arrays

    def _check_sequences(self, arrays: dict[str, np.ndarray]) -> None:
        first = self.sequence_inputs[0]
        ids = arrays[first]
        if ids.ndim != 2:
            raise RequestError(f"{first} must have shape [batch, sequence], got {list(ids.shape)}")
        n = ids.shape[1]
        if n < 1:
            raise RequestError(f"{first} has sequence length 0; at least 1 token is needed")
        if self.max_seq_len is not None and n > self.max_seq_len:
            raise RequestError(f"sequence length {n} exceeds this model's max_seq_len={self.max_seq_len}")
        for name in self.sequence_inputs[1:]:
            if arrays[name].shape != ids.shape:
                raise RequestError(f"{name} has shape {list(arrays[name].shape)} but {first} has {list(ids.shape)}; "
                                   "they must match")
        mask = arrays.get(self.mask_input) if self.mask_input else None
        if mask is not None and not np.isin(mask, (0, 1)).all():
            raise RequestError(f"{self.mask_input} must hold only 0 (padding) and 1 (token)")
        tokens = arrays.get(self.token_input) if self.token_input else None
        if tokens is not None and self.vocab_size is not None and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise RequestError(f"{self.token_input} must lie in [0, {self.vocab_size}) (vocab_size={self.vocab_size}); "
                               f"got values from {tokens.min()} to {tokens.max()}")

    # -- batches -------------------------------------------------------------------------------------------

    def _groups(self, items: list[tuple[int, dict[str, np.ndarray]]]) -> list[list[tuple[int, dict]]]:
        """Requests that run as one ONNX Runtime call: all of them, or one group per sequence length."""
        if not self.is_text or self.pad_across_lengths:
            return [items] if items else []
        by_len: dict[int, list] = {}
        for item in items:
            by_len.setdefault(item[1][self.sequence_inputs[0]].shape[1], []).append(item)
        return list(by_len.values())

    def _run(self, group: list[tuple[int, dict[str, np.ndarray]]]) -> list[dict[str, np.ndarray]]:
        """One call for the group (padded to its longest sequence), split back into per-request outputs."""
        rows = [arrays[self.input_names[0]].shape[0] for _, arrays in group]
        if self.is_text:
            n = max(arrays[self.sequence_inputs[0]].shape[1] for _, arrays in group)
            feeds = {name: np.zeros((sum(rows), n), group[0][1][name].dtype) for name in self.sequence_inputs}
            feeds.update({name: np.concatenate([arrays[name] for _, arrays in group])
                          for name in self.input_names if name not in feeds})
            start = 0
            for (_, arrays), b in zip(group, rows, strict=True):
                for name in self.sequence_inputs:  # padding: token 0 with mask 0
                    batch = feeds[name]
                    batch[start:start + b, :arrays[name].shape[1]] = arrays[name]
                start += b
        else:
            feeds = {name: np.concatenate([arrays[name] for _, arrays in group]) for name in self.input_names}
        outputs = self.session.run(self.output_names, feeds)
        results, start = [], 0
        for (_, arrays), b in zip(group, rows, strict=True):
            own = {}
            for name, out in zip(self.output_names, outputs, strict=True):
                part = out[start:start + b]
                if name in self.per_token_outputs:  # one row per token: drop the padding
                    part = part[:, :arrays[self.sequence_inputs[0]].shape[1]]
                own[name] = part
            results.append(own)
            start += b
        return results

    def execute(self, requests: list) -> list:
        responses: list = [None] * len(requests)
        items = []
        for i, request in enumerate(requests):
            try:
                items.append((i, self._read(request)))
            except RequestError as e:
                responses[i] = _error(str(e))
        for group in self._groups(items):
            try:
                results = self._run(group)
            except Exception as e:  # noqa: BLE001 - the server must keep serving; the client gets the reason
                for i, _ in group:
                    responses[i] = _error(f"ONNX Runtime failed: {type(e).__name__}: {e}")
                continue
            for (i, _), outs in zip(group, results, strict=True):
                responses[i] = pb_utils.InferenceResponse([_to_triton(k, v) for k, v in outs.items()])
        return responses

    def finalize(self) -> None:
        self.session = None
