"""int8 quantization of the MatMul/Gemm weights through onnxruntime.quantization, FlurkaAttention kept float.

Dynamic (default): weights int8 ahead of time, activations quantized per call (MatMulInteger; ONNX Runtime
fuses it to DynamicQuantizeMatMul on load). Static (with calibration data): activation ranges measured on
the samples (MinMax), QDQ format, which ONNX Runtime runs as QLinearMatMul / MatMulIntegerToFloat.

Only MatMul and Gemm with a constant weight are quantized (MatMulConstBOnly): the attention itself, the
Linformer projections E_K/E_V (their weight is a Slice of E to the sequence length) and the FlurkaAttention
inputs stay float, and `quant_pre_process` is not run because it inlines model-local functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from ..onnx_io import META_QUANTIZATION
from ..utils import temporary_directory
from .flurka_guard import assert_preserved, is_flurka, snapshot
from .ort_fusions import quiet_ort_logs

OP_TYPES = ["MatMul", "Gemm"]


class CalibrationError(ValueError):
    pass


def _float_model(model: onnx.ModelProto) -> None:
    bad = {onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16"}
    for t in model.graph.initializer:
        if t.data_type in bad:
            raise ValueError(f"int8 quantization needs an fp32 model; this one has {bad[t.data_type]} weights "
                             "(export with --dtype fp32)")
    if any(p.key == META_QUANTIZATION for p in model.metadata_props):
        raise ValueError("the model is already quantized (metadata flurka.quantization); start from the fp32 file")


def _input_types(model: onnx.ModelProto) -> dict[str, np.dtype]:
    inits = {t.name for t in model.graph.initializer}
    return {i.name: onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
            for i in model.graph.input if i.name not in inits}


def load_calibration(path: str | os.PathLike, model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Arrays named like the model's inputs, each with a leading sample axis (samples are fed one at a time).

    Read with allow_pickle=False: an .npz holding Python objects is refused, never unpickled.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration data {path} does not exist")
    types = _input_types(model)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as e:
        raise CalibrationError(f"{path} is not a readable .npz of numeric arrays ({e})") from None
    missing = sorted(set(types) - set(arrays))
    if missing:
        raise CalibrationError(f"{path} lacks arrays for the model inputs {missing}; it has {sorted(arrays)} "
                               f"(expected one array per input: {sorted(types)}, leading axis = samples)")
    counts = {len(arrays[k]) for k in types}
    if len(counts) != 1 or 0 in counts:
        raise CalibrationError(f"{path}: the input arrays must hold the same, non-zero number of samples, "
                               f"got {{{', '.join(f'{k}: {len(arrays[k])}' for k in types)}}}")
    return {k: np.ascontiguousarray(arrays[k]).astype(types[k], copy=False) for k in types}


def _calibration_reader(samples: dict[str, np.ndarray]):  # noqa: ANN202
    from onnxruntime.quantization import CalibrationDataReader

    class NpzReader(CalibrationDataReader):
        def __init__(self) -> None:
            n = len(next(iter(samples.values())))
            self._it: Iterator[dict[str, np.ndarray]] = ({k: v[i:i + 1] for k, v in samples.items()} for i in range(n))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    return NpzReader()


def quantize_int8(model: onnx.ModelProto, calibration: dict[str, np.ndarray] | None = None,
                  per_channel: bool = False) -> onnx.ModelProto:
    """Dynamic int8 (calibration None) or static int8 QDQ (calibration: arrays from `load_calibration`).

    Raises FlurkaNodeLost if a FlurkaAttention node, overload, body or float input did not come through.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    _float_model(model)
    before = snapshot(model)
    exclude = [n.name for n in model.graph.node if is_flurka(n)]
    # quiet_ort_logs: ORT suggests quant_pre_process, which is not possible here (see above).
    with temporary_directory("flurka-int8-") as tmp, quiet_ort_logs():
        out = Path(tmp) / "int8.onnx"
        # Handed a ModelProto, onnxruntime.quantization moves its initializers to external data in place and
        # leaves that .data file in the working directory: give it a file in our scratch directory instead.
        work = Path(tmp) / "fp32.onnx"
        onnx.save_model(model, str(work), save_as_external_data=model.ByteSize() >= 2**31)
        if calibration is None:
            quantize_dynamic(str(work), out, op_types_to_quantize=OP_TYPES, per_channel=per_channel,
                             weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                             extra_options={"MatMulConstBOnly": True})
            kind = "int8-dynamic"
        else:
            try:
                quantize_static(str(work), out, _calibration_reader(calibration), quant_format=QuantFormat.QDQ,
                                op_types_to_quantize=OP_TYPES, per_channel=per_channel,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                nodes_to_exclude=exclude, calibrate_method=CalibrationMethod.MinMax,
                                extra_options={"MatMulConstBOnly": True, "ActivationSymmetric": False})
            except Exception as e:  # ORT's own error types (InvalidArgument, Fail): the samples do not fit the model
                raise CalibrationError(f"the calibration run failed: {str(e).splitlines()[0][:300]}") from None
            kind = "int8-static"
        quantized = onnx.load(str(out))
    assert_preserved(before, quantized, f"onnxruntime.quantization ({kind})")
    props = {p.key: p.value for p in model.metadata_props}
    props[META_QUANTIZATION] = kind
    onnx.helper.set_model_props(quantized, props)
    return quantized
