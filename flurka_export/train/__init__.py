"""A small CPU training loop for the examples (classifiers and causal LMs), and PyTorch vs ONNX Runtime checks."""

from .evaluate import (
    PredictionReport,
    compare_predictions,
    export_and_compare,
    export_test_results,
    onnx_predict,
    torch_predict,
)
from .loop import TrainResult, train_classifier, train_lm

__all__ = ["PredictionReport", "TrainResult", "compare_predictions", "export_and_compare", "export_test_results",
           "onnx_predict", "torch_predict", "train_classifier", "train_lm"]
