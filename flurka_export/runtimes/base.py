"""The interface every runtime implements; verify, bench and the CLI see runtimes only through it.

Adding a runtime = one module with a `Runtime` subclass, listed in `runtimes/registry.py`, plus its tests.
Variants (the devices bench times separately) are named `<name>` or `<name>-<device>`.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
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


@dataclasses.dataclass
class BenchRequest:
    """What `bench` hands a runtime to time: one variant, the model's files and the run's options."""

    variant: str  # one of variants(): "torch-cpu", "ort-cuda", "trt"
    files: dict[str, str]  # "checkpoint", "onnx" and what prepare_bench added ("plan")
    onnx_path: str | None = None  # the ONNX file of this row (an optimized or int8 variant for ort)
    threads: int | None = None  # intra-op threads, the same for every runtime
    plugin: str | None = None  # TensorRT plugin library
    batch: int = 1
    seq_lens: tuple[int, ...] = ()


def _no_sync() -> None:
    return None


@dataclasses.dataclass
class TimedCall:
    """How bench times one runtime: `make_call(feeds)` gives the timed call, `sync` waits for the device.

    memory: where one call's peak memory shows ("host" RSS, "cuda" torch allocator, None: not visible here);
    `make_memory_call` gives the call to measure it on when that is not the timed one."""

    make_call: Callable[[dict[str, Any]], Callable[[], Any]]
    sync: Callable[[], Any] = _no_sync
    memory: str | None = None
    make_memory_call: Callable[[dict[str, Any]], Callable[[], Any]] | None = None


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

    # -- bench: what a row needs, how it is prepared and timed ---------------------------------------------
    bench_needs: tuple[str, ...] = ("onnx",)  # files bench must make first: "checkpoint" and/or "onnx"
    onnx_variants: bool = False  # runs `bench --variants` (optimized, int8 ONNX files) as rows of its own

    def cannot_bench(self, request: BenchRequest) -> str | None:
        """None when bench can time this runtime with these options, else one sentence saying why not."""
        return None

    def prepare_bench(self, request: BenchRequest, workdir: str) -> dict[str, str]:
        """Files this runtime builds from the exported model before timing (an engine); added to files."""
        return {}

    @abc.abstractmethod
    def timed_call(self, request: BenchRequest) -> TimedCall:
        """Load the model for `request.variant` once and say how to time one call on it."""
