"""What a benchmark run is asked to do, checked in full before any model is built or timed."""

from __future__ import annotations

import dataclasses
import re

from ..runtimes import runtime_names
from .timing import default_threads


@dataclasses.dataclass
class BenchSettings:
    kinds: list[str]
    seq_lens: list[int]
    runtimes: list[str] = dataclasses.field(default_factory=lambda: list(runtime_names()))
    batch: int = 1
    layers: int = 2
    hidden: int = 256
    heads: int = 4
    low_rank: int = 64
    num_features: int = 64
    iters: int = 10
    warmup: int = 2
    threads: int | None = None  # None: default_threads(), filled in by validate() and recorded in the report
    plugin: str | None = None  # libflurka_trt_plugin.so for the trt runtime
    subprocess: bool = True  # False: all in this process (tests; faster start)
    seed: int = 0
    variants: list[str] = dataclasses.field(default_factory=lambda: ["fp32"])  # ORT model variants (bench/variants.py)

    def validate(self) -> BenchSettings:
        """Raise ValueError (one line: what is wrong, what is allowed) for any bad value; fill in threads."""
        from ..models.config import ATTENTION_KINDS

        if not self.kinds:
            raise ValueError(f"--kinds is empty: pick from {', '.join(ATTENTION_KINDS)}")
        for k in self.kinds:
            if k not in ATTENTION_KINDS:
                raise ValueError(f"unknown attention kind {k!r}: pick from {', '.join(ATTENTION_KINDS)}")
        if not self.seq_lens or any(_not_int(n) or n < 1 for n in self.seq_lens):
            raise ValueError(f"--seq-lens must be positive integers, not {self.seq_lens}")
        if not self.runtimes:
            raise ValueError(f"--runtimes is empty: pick from {', '.join(runtime_names())}")
        for name, low in (("iters", 1), ("warmup", 0), ("batch", 1), ("layers", 1), ("hidden", 1), ("heads", 1),
                          ("low_rank", 1), ("num_features", 1)):
            value = getattr(self, name)
            if _not_int(value) or value < low:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {low}, not {value!r}")
        if self.threads is None:
            self.threads = default_threads()
        elif _not_int(self.threads) or self.threads < 1:
            raise ValueError(f"--threads must be an integer >= 1, not {self.threads!r}")
        for kind in self.kinds:  # the model's own limits (hidden divisible by heads, ...), before any work
            try:
                model_config(self, kind)
            except ValueError as e:
                raise ValueError(_in_flags(str(e))) from None
        return self


# The model fields bench sets, as the flags that set them, so a config error names what to change.
_FLAGS = {"low_rank": "--low-rank", "max_seq_len": "max(--seq-lens)", "hidden_size": "--hidden",
          "num_heads": "--heads", "num_layers": "--layers", "num_features": "--num-features"}


def _in_flags(message: str) -> str:
    for field, flag in _FLAGS.items():
        message = re.sub(rf"\b{field}\b", flag, message)
    return message.replace("invalid FlurkaConfig: ", "bench model: ")


def _not_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


def model_config(settings: BenchSettings, kind: str):  # noqa: ANN201 - FlurkaConfig, imported lazily
    from ..models import FlurkaConfig

    return FlurkaConfig(task="classify", attention=kind, num_layers=settings.layers, hidden_size=settings.hidden,
                        num_heads=settings.heads, low_rank=settings.low_rank, max_seq_len=max(settings.seq_lens),
                        num_features=settings.num_features, vocab_size=1000, seed=settings.seed)
