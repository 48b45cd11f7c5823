"""ONNX graph passes, one per module: `fuse_flurka_attention` (decomposed subgraphs -> FlurkaAttention),
`prepare_trt` (plugin attributes for TensorRT's parser), `ort_fusions` (ONNX Runtime's transformer fusions)
and `quantize_int8` (onnxruntime.quantization), the last two checked by `flurka_guard` and chained by
`flurka_export.optimize`. Each is composable: ModelProto in, out."""
