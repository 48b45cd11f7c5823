"""Per-token decode latency, past bytes and prefill throughput of `lm` models, against softmax baselines.

What is timed (batch 1, float32, on the CPU, through `timing.time_fn`):

- ours: the exported `lm` model (`export_onnx`) in ONNX Runtime, one decode step at context P: input_ids
  [1, 1], attention_mask [1, P + 1], position_ids [[P]] and a past of P tokens. A kernel kind's past is its
  recurrent state, whose size does not depend on P (random nonnegative values); softmax's is a KV cache
  [1, H, P, d] of random K/V, which the graph concatenates with the new row into a new present each step.
  Inputs and outputs are OrtValues bound once (IOBinding, outputs preallocated): the graph is timed, not
  numpy conversions.
- softmax-gqa: the same softmax weights on `com.microsoft.GroupQueryAttention` with past and present one
  preallocated buffer per layer (bench/gqa.py; what onnxruntime-genai runs).
- gpt2-hf: Hugging Face transformers' GPT2LMHeadModel of the same size in PyTorch, one forward step with a
  DynamicCache of P random K/V rows (what `generate` does per token); the cache is cropped back to P after
  each timed step (a view, no copy) so every call sees the same context.

For each context every model is timed in `rounds` interleaved rounds (all models one after another, then
again), so a load change on a shared machine hits them alike; a row's timings are all its rounds together.
Prefill: one call over `prefill_len` tokens from an empty past, in tokens/s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .timing import default_threads

BASELINES = ("softmax-gqa", "gpt2-hf")
FLOAT_BYTES = 4


@dataclasses.dataclass
class DecodeSettings:
    kinds: list[str] = dataclasses.field(default_factory=lambda: ["kernel-elu", "softmax"])  # ours, exported
    baselines: list[str] = dataclasses.field(default_factory=lambda: list(BASELINES))
    contexts: list[int] = dataclasses.field(default_factory=lambda: [256, 1024, 4096, 16384])
    layers: int = 6
    hidden: int = 512
    heads: int = 8
    vocab: int = 8192
    prefill_len: int = 512
    iters: int = 20  # timed calls per model and context, over all rounds
    warmup: int = 2  # untimed calls per model, context and round
    rounds: int = 3
    threads: int | None = None  # None: default_threads()
    budget_s: float = 30.0  # a model's timing at one context in one round stops after this long
    seed: int = 0

    def validate(self) -> DecodeSettings:
        from ..models.config import causal_attention_error

        for kind in self.kinds:
            if why := causal_attention_error(kind):
                raise ValueError(why)
            if kind not in ("softmax",) and not kind.startswith("kernel-"):
                raise ValueError(f"unknown lm attention kind {kind!r}: softmax or kernel-<map>")
        for b in self.baselines:
            if b not in BASELINES:
                raise ValueError(f"unknown baseline {b!r}: pick from {', '.join(BASELINES)}")
        if not self.kinds and not self.baselines:
            raise ValueError("nothing to time: no kinds and no baselines")
        if not self.contexts or any(isinstance(p, bool) or not isinstance(p, int) or p < 1 for p in self.contexts):
            raise ValueError(f"contexts must be positive integers, not {self.contexts}")
        for name, low in (("layers", 1), ("hidden", 1), ("heads", 1), ("vocab", 2), ("prefill_len", 1),
                          ("iters", 1), ("warmup", 0), ("rounds", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, not {value!r}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        if self.threads is None:
            self.threads = default_threads()
        return self

    @property
    def max_len(self) -> int:
        """Positions of every model (and rows of the shared buffers): the longest context plus 256."""
        return max(max(self.contexts) + 256, self.prefill_len)

    def iters_per_round(self) -> int:
        return max(1, math.ceil(self.iters / self.rounds))


def lm_config(settings: DecodeSettings, attention: str) -> Any:
    from ..models import FlurkaConfig

    return FlurkaConfig(task="lm", attention=attention, num_layers=settings.layers, hidden_size=settings.hidden,
                        num_heads=settings.heads, vocab_size=settings.vocab, max_seq_len=settings.max_len,
                        seed=settings.seed)


def past_bytes(config: Any, past_len: int) -> int:
    """Bytes of the whole past (every layer) at context `past_len`, float32."""
    from ..models.lm import past_names, past_shape

    return config.num_layers * len(past_names(config)) * math.prod(past_shape(config, 1, past_len)) * FLOAT_BYTES


def kv_bytes(layers: int, heads: int, head_dim: int, past_len: int) -> int:
    return 2 * layers * heads * past_len * head_dim * FLOAT_BYTES


def _session(model: Any, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


class OursOrt:
    """Our exported lm in ONNX Runtime, inputs and outputs bound once per context."""

    runtime = "ort"

    def __init__(self, name: str, path: str, config: Any, threads: int, seed: int) -> None:
        self.name, self.config, self.seed = name, config, seed
        self.session = _session(path, threads)
        self.binding: Any = None

    def _bind(self, inputs: dict[str, np.ndarray], outputs: dict[str, tuple[int, ...]]) -> Callable[[], None]:
        import onnxruntime as ort

        binding = self.session.io_binding()
        keep = []  # the OrtValues must outlive the binding
        for name, value in inputs.items():
            keep.append(ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value)))
            binding.bind_ortvalue_input(name, keep[-1])
        for name, shape in outputs.items():
            keep.append(ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32))
            binding.bind_ortvalue_output(name, keep[-1])
        self.binding, self._keep = binding, keep
        session = self.session
        return lambda: session.run_with_iobinding(binding)

    def _feeds(self, ids: np.ndarray, past_len: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        from ..models import lm_io
        from ..models.lm import past_names, past_shape

        c, t = self.config, ids.shape[1]
        shape = past_shape(c, 1, past_len)
        past = {}
        for i in range(c.num_layers):
            for n in past_names(c):
                value = rng.standard_normal(shape, dtype=np.float32) if c.attention == "softmax" \
                    else rng.random(shape, dtype=np.float32)  # a state: S and z of nonnegative features
                past[f"{lm_io.PAST_PREFIX}{i}.{n}"] = value
        return lm_io.step_feed(ids, np.ones((1, past_len + t), np.int64), past)

    def _outputs(self, tokens: int, past_len: int) -> dict[str, tuple[int, ...]]:
        from ..models import lm_io
        from ..models.lm import past_names, past_shape

        c = self.config
        out = {lm_io.LOGITS: (1, tokens, c.vocab_size)}
        out.update({f"{lm_io.PRESENT_PREFIX}{i}.{n}": past_shape(c, 1, past_len + tokens)
                    for i in range(c.num_layers) for n in past_names(c)})
        return out

    def at(self, past_len: int) -> Callable[[], None]:
        rng = np.random.default_rng(self.seed + past_len)
        return self._bind(self._feeds(rng.integers(0, self.config.vocab_size, (1, 1)), past_len, rng),
                          self._outputs(1, past_len))

    def prefill(self, tokens: int) -> Callable[[], None]:
        rng = np.random.default_rng(self.seed)
        return self._bind(self._feeds(rng.integers(0, self.config.vocab_size, (1, tokens)), 0, rng),
                          self._outputs(tokens, 0))

    def past_bytes(self, past_len: int) -> int:
        return past_bytes(self.config, past_len)

    def release(self) -> None:
        self.binding, self._keep = None, []


class GqaOrt:
    """The shared-buffer softmax baseline: buffers of `max_len` rows, filled with P random rows per context."""

    runtime = "ort"
    name = "softmax-gqa"

    def __init__(self, softmax_model: Any, max_len: int, threads: int, seed: int) -> None:
        from .gqa import SharedBufferDecoder, gqa_decoder

        self.config, self.seed = softmax_model.config, seed
        self.decoder = SharedBufferDecoder(gqa_decoder(softmax_model), self.config, max_len, threads)

    def at(self, past_len: int) -> Callable[[], None]:
        self.decoder.fill(past_len, seed=self.seed + past_len)
        self.decoder.bind_step(np.array([[1]]), past_len)
        return self.decoder.run

    def past_bytes(self, past_len: int) -> int:
        return past_bytes(self.config, past_len)

    def allocated_bytes(self) -> int:
        c = self.config
        return kv_bytes(c.num_layers, c.num_heads, c.head_dim, self.decoder.max_len)

    def release(self) -> None:
        pass


class Gpt2Hf:
    """transformers' GPT2LMHeadModel of the same size in PyTorch, with a DynamicCache."""

    runtime = "torch"
    name = "gpt2-hf"

    def __init__(self, settings: DecodeSettings) -> None:
        import inspect

        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(settings.seed)
        self.gpt2_config = GPT2Config(n_layer=settings.layers, n_embd=settings.hidden, n_head=settings.heads,
                                      vocab_size=settings.vocab, n_positions=settings.max_len, bos_token_id=0,
                                      eos_token_id=0)
        self.model = GPT2LMHeadModel(self.gpt2_config).eval()
        params = inspect.signature(self.model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5
        self.settings = settings
        self.cache: Any = None

    def _cache(self, past_len: int) -> Any:
        import torch
        from transformers import DynamicCache

        cache = DynamicCache(config=self.gpt2_config)
        s = self.settings
        gen = torch.Generator().manual_seed(s.seed + past_len)
        for i in range(s.layers):
            k, v = (torch.randn(1, s.heads, past_len, s.hidden // s.heads, generator=gen) for _ in range(2))
            cache.update(k, v, i)
        return cache

    def _forward(self, ids: Any, past_len: int, cache: Any) -> Any:
        import torch

        t = ids.shape[1]
        with torch.no_grad():
            return self.model(input_ids=ids, attention_mask=torch.ones(1, past_len + t, dtype=torch.long),
                              position_ids=torch.arange(past_len, past_len + t)[None], use_cache=True,
                              **{self.cache_arg: cache})

    def at(self, past_len: int) -> Callable[[], None]:
        import torch

        self.cache = cache = self._cache(past_len)
        ids = torch.tensor([[1]])

        def step() -> None:
            self._forward(ids, past_len, cache)
            cache.crop(-1)  # back to P rows (a view): every timed step sees the same context

        return step

    def prefill(self, tokens: int) -> Callable[[], None]:
        import torch
        from transformers import DynamicCache

        ids = torch.randint(0, self.settings.vocab, (1, tokens), generator=torch.Generator().manual_seed(0))
        return lambda: self._forward(ids, 0, DynamicCache(config=self.gpt2_config))

    def past_bytes(self, past_len: int) -> int:
        s = self.settings
        return kv_bytes(s.layers, s.heads, s.hidden // s.heads, past_len)

    def release(self) -> None:
        self.cache = None
