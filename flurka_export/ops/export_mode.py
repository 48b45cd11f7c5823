"""How FlurkaAttention is emitted while torch.onnx.export traces a model.

"custom": one com.flurka::FlurkaAttention node (torch.onnx.ops.symbolic); "decomposed": the
reference math in standard ops. The exporter sets it; the op reads it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

ATTENTION_OPS = ("custom", "decomposed")
_mode: contextvars.ContextVar[str] = contextvars.ContextVar("flurka_export_mode", default="custom")


def current_export_mode() -> str:
    return _mode.get()


@contextlib.contextmanager
def export_mode(mode: str) -> Iterator[None]:
    if mode not in ATTENTION_OPS:
        raise ValueError(f"unknown attention_op {mode!r}; allowed: {', '.join(ATTENTION_OPS)}")
    token = _mode.set(mode)
    try:
        yield
    finally:
        _mode.reset(token)
