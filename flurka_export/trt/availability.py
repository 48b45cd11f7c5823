"""TensorRT is optional: import it lazily and say in one sentence what is missing and how to get it."""

from __future__ import annotations

from types import ModuleType

MIN_VERSION = (10, 9)
INSTALL_HINT = (
    "install TensorRT 10.9 or newer for your CUDA version (`pip install tensorrt` from NVIDIA's index, "
    "https://pypi.nvidia.com, or NVIDIA's tar/deb packages) on a machine with an NVIDIA GPU"
)


class TensorRTUnavailable(ImportError):
    """TensorRT cannot be imported, or is too old. `reason` is the short form ("TensorRT not installed")."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt as trt
    except ImportError as e:
        raise TensorRTUnavailable(f"TensorRT is not installed (import tensorrt failed: {e}); {INSTALL_HINT}",
                                  "TensorRT not installed") from None
    version = tuple(int(p) for p in trt.__version__.split(".")[:2] if p.isdigit())
    if version < MIN_VERSION:
        raise TensorRTUnavailable(f"TensorRT {trt.__version__} is too old; {INSTALL_HINT}",
                                  f"TensorRT {trt.__version__} too old, need {'.'.join(map(str, MIN_VERSION))}+")
    return trt


def tensorrt_missing_reason(short: bool = False) -> str | None:
    """None when TensorRT can be used here, else the sentence saying why not and how to install it
    (`short`: only why, for one-line notes such as `trt: skipped (TensorRT not installed)`)."""
    try:
        import_tensorrt()
    except TensorRTUnavailable as e:
        return e.reason if short else str(e)
    return None
