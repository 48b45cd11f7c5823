"""A small CPU training loop for the examples, and PyTorch vs ONNX Runtime accuracy checks."""

from .evaluate import (
    PredictionReport,
    compare_predictions,
    export_and_compare,
    export_test_results,
    onnx_predict,
    torch_predict,
)
from .loop import TrainResult, train_classifier

__all__ = ["PredictionReport", "TrainResult", "compare_predictions", "export_and_compare", "export_test_results",
           "onnx_predict", "torch_predict", "train_classifier"]
