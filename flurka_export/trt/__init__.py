"""TensorRT: plugin loading, ONNX parsing with the plugin enforced, profiles, engines (its Polygraphy runner is
runtimes/trt_runner.py, beside the other runtimes' runners).

`import tensorrt` happens only inside these functions: everything else in flurka_export works
without TensorRT, and each entry point here fails with one sentence saying how to install it.
"""

from .availability import TensorRTUnavailable, import_tensorrt, tensorrt_missing_reason
from .profiles import InputProfile, default_profiles, parse_shape_spec

__all__ = ["InputProfile", "TensorRTUnavailable", "default_profiles", "import_tensorrt", "parse_shape_spec",
           "tensorrt_missing_reason"]
