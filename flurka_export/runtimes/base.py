"""The interface every runtime implements; verify, bench, deploy and the CLI see runtimes only through it.

Adding a runtime = one module with a `Runtime` subclass, listed in `runtimes/registry.py`, plus its tests.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any


@dataclasses.dataclass
class RunRequest:
    """What a runner is built from: the checkpoint's model (PyTorch) and/or the ONNX file and options."""

    torch_model: Any = None  # nn.Module for the reference runtime
    onnx_model: Any = None  # onnx.ModelProto,  # possibly with extra per-layer outputs
    onnx_path: str | None = None
    dtype: str = "fp32"
    capture_layers: bool = False
    engine: str | None = None  # TensorRT plan
    plugin: str | None = None  # TensorRT plugin library
    build_engine: bool = False
    providers: list[str] | None = None


class RuntimeUnavailable(RuntimeError):
    """This runtime cannot run this request here; the message says why in one sentence."""


class Runtime(abc.ABC):
    name: str  # the name users type (--runtimes torch,ort,trt)
    description: str  # how FlurkaAttention runs there
    dtypes: tuple[str, ...] = ("fp32", "fp16", "bf16")  # model dtypes it can run

    @abc.abstractmethod
    def unavailable_reason(self) -> str | None:
        """None when the runtime is installed and usable here, else one sentence saying why not."""

    def cannot_run(self, request: RunRequest) -> str | None:
        """None when this runtime can run `request`, else one sentence saying why not."""
        why = self.unavailable_reason()
        if why:
            return why
        if request.dtype not in self.dtypes:
            return f"{self.name} cannot run {request.dtype} models here (it runs {', '.join(self.dtypes)})"
        return None

    def variants(self) -> dict[str, str | None]:
        """The devices this runtime runs on, as `bench` names them ("ort-cpu", "ort-cuda"): None when usable
        here, else why not. Default: one variant named like the runtime."""
        return {self.name: self.unavailable_reason()}

    @abc.abstractmethod
    def make_runner(self, request: RunRequest) -> Any:
        """A Polygraphy runner (BaseRunner). Raises RuntimeUnavailable with the reason when it cannot."""
