"""The one list of runtimes: verify, bench, deploy and the CLI help all read it."""

from __future__ import annotations

from .base import Runtime
from .ort_runtime import OrtRuntime
from .torch_runtime import TorchRuntime
from .trt_runtime import TrtRuntime

REFERENCE = "torch"  # what every other runtime is compared against
_RUNTIMES: dict[str, Runtime] = {r.name: r for r in (TorchRuntime(), OrtRuntime(), TrtRuntime())}


def runtime_names() -> tuple[str, ...]:
    return tuple(_RUNTIMES)


def get_runtime(name: str) -> Runtime:
    try:
        return _RUNTIMES[name]
    except KeyError:
        raise ValueError(f"unknown runtime {name!r}; allowed: {', '.join(_RUNTIMES)}") from None


def parse_runtime_list(text: str | None, option: str = "--runtimes") -> tuple[str, ...]:
    """'torch, ort' -> ('torch', 'ort'); unknown names are refused naming the allowed ones."""
    items = tuple(dict.fromkeys(s.strip() for s in (text or "").split(",") if s.strip()))
    for item in items:
        if item not in _RUNTIMES:
            raise ValueError(f"{option}: unknown runtime {item!r}; allowed: {', '.join(_RUNTIMES)}")
    return items


def runtime_of_variant(variant: str) -> Runtime:
    """'ort-cuda' -> the ort runtime; 'trt' -> trt (variants are named `<runtime>` or `<runtime>-<device>`)."""
    for name, runtime in _RUNTIMES.items():
        if variant == name or variant.startswith(name + "-"):
            return runtime
    raise ValueError(f"unknown runtime {variant!r}; allowed: {', '.join(_RUNTIMES)} and their variants")
