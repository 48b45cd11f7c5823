"""ONNX graph passes, one per module: `fuse_flurka_attention` (decomposed subgraphs -> FlurkaAttention)
and `prepare_trt` (plugin attributes for TensorRT's parser). Each is composable: ModelProto in, out."""
