"""FamilySpec: what a model family declares once, and what every other layer reads.

A family is one module of models (its nn.Modules) plus one spec module here. The spec declares the
ONNX inputs and outputs (names, dtypes, symbolic dims), the example inputs and dynamic shapes of the
export, the verify inputs (shapes, random feeds with padding, and the driver that feeds a runtime),
the TensorRT profile shapes, the serving I/O, the layers verify may hook, the sequence range and
whether the family generates. Export, verify, TensorRT, serve, deploy, bench and optimize branch on
none of the family names: they ask the spec (tests/models/test_family_specs.py scans for branches).
"""

from __future__ import annotations

import abc
import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..config import FlurkaConfig

Shape = tuple[int, int]  # (batch, sequence length); for fixed-length families the sequence is the token count
Feed = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray]
RunFn = Callable[[Feed], Outputs]  # one runtime: feed -> named outputs
Step = tuple[str, Outputs]  # ("forward" | "prefill" | "step 1" ..., outputs of that run)
Dims = tuple[int, ...]
BATCH, SEQUENCE = "batch", "sequence"  # the symbolic dims of IOTensor.dims
PAST_PREFIX, PRESENT_PREFIX = "past_key_values.", "present."  # state names (optimum / onnxruntime-genai)


@dataclasses.dataclass(frozen=True)
class IOTensor:
    """One ONNX input or output. dtype: "int64", or "float" (the exported model's float dtype)."""

    name: str
    dtype: str
    dims: tuple[str | int, ...]  # BATCH, SEQUENCE, another symbolic name, or a fixed size

    @property
    def per_token(self) -> bool:
        """Dim 1 is the sequence: padded inputs, and outputs whose padded rows are cut off when serving."""
        return len(self.dims) > 1 and self.dims[1] == SEQUENCE


@dataclasses.dataclass(frozen=True)
class Head:
    """One config.task of a family: the head on top of the family's trunk and its output."""

    name: str  # the head within the family: "classify", "mlm", "encoder", "lm"
    model: type  # nn.Module class, built as model(config)
    output: str = "logits"
    output_dims: tuple[str | int, ...] = (BATCH, "labels")


@dataclasses.dataclass(frozen=True)
class ServingIO:
    """What serve/ and deploy/ need: the request tensors, how requests are checked and batched."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    sequence_inputs: tuple[str, ...]  # [batch, sequence]: zero-padded to batch requests of different lengths
    per_token_outputs: tuple[str, ...]  # [batch, sequence, ...]: padded rows cut off per request
    token_input: str | None  # ids checked against vocab_size
    mask_input: str | None  # 0/1 padding mask (0 = padding)
    padding_invariant: bool  # padded batching leaves every request's outputs unchanged
    max_seq_len: int | None
    vocab_size: int | None
    # Families that generate: the names the token-by-token server (serve/generate_model.py) feeds, by role
    # (decoder, token_input, mask_input, position_input, logits_output, past_prefix, present_prefix); None otherwise.
    generation: tuple[tuple[str, str], ...] | None = None


# -- verify: feed drivers -------------------------------------------------------------------------------------


class FeedDriver(abc.ABC):
    """One verify case (Polygraphy's data loader, per case): feeds one runtime, step by step.

    `drive(run)` calls `run(feed)` once per step and returns every step's outputs, labelled. The same driver
    drives every runtime; a step may be built from that runtime's own previous outputs (generation)."""

    label: str  # the case, as the report shows it ("2x16")
    first_feed: Feed  # the first step's feed (golden files, softmax error)

    @abc.abstractmethod
    def drive(self, run: RunFn) -> list[Step]:
        """The outputs of every step, in order."""

    def consistency(self, steps: list[Step]) -> list[tuple[str, Outputs, Outputs]]:
        """Checks inside one runtime's own results: (what, expected, got) that must agree (none for encoders)."""
        return []


class SingleFeed(FeedDriver):
    """Encoders: one feed, one run, one step labelled "forward"."""

    def __init__(self, label: str, feed: Feed) -> None:
        self.label, self.first_feed = label, feed

    def drive(self, run: RunFn) -> list[Step]:
        return [("forward", run(self.first_feed))]


def carry_state(outputs: Outputs) -> Feed:
    """present.{i}.* outputs as the next step's past_key_values.{i}.* inputs."""
    return {PAST_PREFIX + k[len(PRESENT_PREFIX):]: v for k, v in outputs.items() if k.startswith(PRESENT_PREFIX)}


class PrefillThenSteps(FeedDriver):
    """Generating families: a prefill, then `steps` decode steps. Each step's feed is `next_feed(i, previous feed,
    previous outputs)` plus the previous step's present.* outputs fed back as past_key_values.* inputs, so each
    runtime continues from its own state. Steps are labelled "prefill", "step 1", "step 2", ..."""

    def __init__(self, label: str, prefill: Feed, steps: int,
                 next_feed: Callable[[int, Feed, Outputs], Feed], whole: Feed | None = None,
                 logits: str = "logits") -> None:
        self.label, self.first_feed, self.steps, self.next_feed = label, prefill, steps, next_feed
        self.whole, self.logits = whole, logits

    def drive(self, run: RunFn) -> list[Step]:
        feed = self.first_feed
        out = run(feed)
        result: list[Step] = [("prefill", out)]
        for i in range(1, self.steps + 1):
            feed = {**self.next_feed(i, feed, out), **carry_state(out)}
            out = run(feed)
            result.append((f"step {i}", out))
        if self.whole is not None:  # the same tokens in one prefill, from an empty past
            result.append((f"prefill T+{self.steps}", run(self.whole)))
        return result

    def consistency(self, steps: list[Step]) -> list[tuple[str, Outputs, Outputs]]:
        """With `whole` (prefill T plus every step's tokens at once): its logits at the last K+1 positions must
        equal the prefill's last position and each step's, in the same runtime."""
        if self.whole is None:
            return []
        outs = [o[self.logits] for _, o in steps[:-1]]
        stepwise = np.concatenate([outs[0][:, -1:], *outs[1:]], axis=1)
        whole = steps[-1][1][self.logits][:, -stepwise.shape[1]:]
        return [(f"prefill T+{self.steps} vs T + {self.steps} steps", {self.logits: stepwise}, {self.logits: whole})]


# -- the spec ---------------------------------------------------------------------------------------------------


class FamilySpec(abc.ABC):
    """A model family's declaration. `heads` maps each config.task the family serves to its head.

    Generic defaults derive from `inputs()`/`outputs()` (dims BATCH and SEQUENCE); a family overrides what
    differs. Registered by being a module of models/specs/ that defines SPEC (or with specs.register)."""

    family: str  # "text", "image", "lm"
    heads: dict[str, Head]
    order: int = 100  # where its tasks come in lists (--task choices, error messages)
    generates: bool = False  # feeds a prefill then decode steps (verify's driver, serving's generate endpoint)
    default_attention: str = "flurka-elu"  # the kind `new` gives this family when none is named
    shape_help: str = "BATCHxSEQ such as 4x300"  # what --shapes takes
    token_input: str | None = None  # the input of token ids (checked against vocab_size when serving)
    mask_input: str | None = None  # the 0/1 padding mask input (0 = padding)

    # -- model ----------------------------------------------------------------------------------------------
    def head(self, config: FlurkaConfig) -> Head:
        return self.heads[config.task]

    def build(self, config: FlurkaConfig) -> nn.Module:
        return self.head(config).model(config)

    def describe_attention(self, config: FlurkaConfig) -> str:
        """The attention kinds of the model in words (inspect)."""
        return f"attention={config.attention}"

    def validate(self, config: FlurkaConfig) -> str | None:
        """Relations between fields that only this family has; None, or what is wrong (one line)."""
        return None

    def pre_norm_default(self) -> bool:
        """Whether blocks are pre-LN when config.pre_norm is None."""
        return False

    def seq_len_range(self, config: FlurkaConfig) -> tuple[int, int]:
        """Smallest and largest sequence length the model accepts."""
        return 1, config.max_seq_len

    def has_sequence_axis(self, config: FlurkaConfig) -> bool:
        """Whether the sequence length is an input dim (and export's max_seq_len bounds it)."""
        return bool(self.sequence_inputs(config))

    def hook_layers(self, model: nn.Module) -> list[nn.Module]:
        """The blocks verify may hook: each has .attention (with .out, the output projection)."""
        return list(model.encoder.layers if hasattr(model, "encoder") else model.layers)

    # -- ONNX I/O ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def inputs(self, config: FlurkaConfig) -> list[IOTensor]:
        """The ONNX inputs, in order (also the model's keyword arguments)."""

    def outputs(self, config: FlurkaConfig) -> list[IOTensor]:
        head = self.head(config)
        return [IOTensor(head.output, "float", head.output_dims)]

    def input_names(self, config: FlurkaConfig) -> list[str]:
        return [t.name for t in self.inputs(config)]

    def output_names(self, config: FlurkaConfig) -> list[str]:
        return [t.name for t in self.outputs(config)]

    def sequence_inputs(self, config: FlurkaConfig) -> list[str]:
        return [t.name for t in self.inputs(config) if t.per_token]

    def name_outputs(self, config: FlurkaConfig, result: Any) -> dict[str, torch.Tensor]:
        """The model's return value (a tensor, or a tuple in output order) named as the ONNX outputs."""
        values = result if isinstance(result, tuple | list) else (result,)
        return dict(zip(self.output_names(config), values, strict=True))

    # -- export -----------------------------------------------------------------------------------------------
    def export_module(self, model: nn.Module) -> nn.Module:
        """The module torch.onnx.export traces (a family whose graph has more I/O than its forward wraps it)."""
        return model

    def torch_kwargs(self, config: FlurkaConfig, feeds: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of `export_module(model)` for feeds named as the ONNX inputs."""
        return feeds

    def export_parts(self, config: FlurkaConfig) -> tuple[tuple[str, str], ...]:
        """(part, file name) of a family exported as a directory of ONNX files (optimum's layout); () for one."""
        return ()

    def merged_parts(self, config: FlurkaConfig) -> tuple[tuple[str, str, str], ...]:
        """(file name, first part, with-past part) of files that merge two parts behind an If (optimum's
        decoder_model_merged.onnx, passes/merge_decoders.py); () for none."""
        return ()

    def merged_feed(self, config: FlurkaConfig, part: str, feed: Feed, dtypes: dict[str, Any]) -> Feed:
        """A feed of `part` as its merged file takes it (the branch flag, stand-ins for what the branch skips)."""
        raise NotImplementedError(f"the {self.family} family has no merged files")

    def export_part(self, model: nn.Module, part: str, dtype: Any, max_seq_len: int) -> dict[str, Any]:
        """One part's module, kwargs, input_names, output_names, dynamic_shapes and guards ({input: limit})."""
        raise NotImplementedError(f"the {self.family} family exports one file")

    def part_kwargs(self, config: FlurkaConfig, part: str, feeds: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of `export_part(...)["module"]` for feeds named as that part's ONNX inputs."""
        return feeds

    def finish_export(self, config: FlurkaConfig, model: Any) -> None:
        """Touch up the exported onnx.ModelProto in place (e.g. name the dims torch.export left as s<number>)."""
        return None

    def example_inputs(self, config: FlurkaConfig, batch: int = 2, seq_len: int | None = None,
                       dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Inputs that fit the model, named as in the ONNX graph (the export traces with these)."""
        import torch

        n = seq_len or min(8, self.seq_len_range(config)[1])
        feed = self.make_feed(config, (batch, n), seed=0, pad=False)
        return {k: torch.from_numpy(v).to(dtype or torch.float32) if v.dtype.kind == "f" else torch.from_numpy(v)
                for k, v in feed.items()}

    def dynamic_shapes(self, config: FlurkaConfig, max_seq_len: int) -> dict[str, Any]:
        """torch.export dynamic shapes from the inputs' symbolic dims (batch 1..1024, sequence 1..max_seq_len)."""
        import torch

        dims = {BATCH: torch.export.Dim(BATCH, min=1, max=1024), SEQUENCE: torch.export.Dim(SEQUENCE, min=1, max=max_seq_len)}
        return {t.name: {i: dims[d] for i, d in enumerate(t.dims) if d in dims} for t in self.inputs(config)}

    # -- verify -----------------------------------------------------------------------------------------------
    def parse_shape(self, item: str, config: FlurkaConfig, hi: int) -> Shape | None:
        """One --shapes item as (batch, sequence); None if it is not in this family's syntax."""
        m = re.fullmatch(r"(\d+)x(\d+)", item)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def default_shapes(self, config: FlurkaConfig, max_seq_len: int | None = None) -> list[Shape]:
        """The smallest input, a padded middle one and the largest."""
        lo, hi = self.seq_len_range(config)
        hi = min(hi, max_seq_len or hi)
        return [(1, lo), (3, max(lo, hi // 2 + 1)), (2, hi)]

    def check_shapes(self, config: FlurkaConfig, max_seq_len: int | None) -> tuple[int, int]:
        """The sequence range verify's shapes must lie in (the file's own limit applies where there is a sequence)."""
        lo, hi = self.seq_len_range(config)
        if max_seq_len is not None and self.has_sequence_axis(config):
            hi = min(hi, max_seq_len)
        return lo, hi

    @abc.abstractmethod
    def make_feed(self, config: FlurkaConfig, shape: Shape, seed: int = 0, float_dtype: str = "float32",
                  pad: bool = True) -> Feed:
        """Random inputs for one shape, numpy, named as the ONNX inputs (with padding where `pad`)."""

    def verify_cases(self, config: FlurkaConfig, shapes: list[Shape], seed: int = 0,
                     float_dtype: str = "float32") -> list[FeedDriver]:
        """One driver per shape: encoders feed once; a generating family overrides this with its prefill and steps."""
        return [SingleFeed(f"{b}x{n}", self.make_feed(config, (b, n), seed=seed + i, float_dtype=float_dtype))
                for i, (b, n) in enumerate(shapes)]

    # -- TensorRT ---------------------------------------------------------------------------------------------
    def trt_unsupported(self, config: FlurkaConfig) -> str | None:
        """None, or one line on why TensorRT cannot build this family."""
        return None

    def trt_profile(self, config: FlurkaConfig, batch: Dims, seq: Dims) -> dict[str, tuple[Dims, Dims, Dims]]:
        """min/opt/max per input from (min, opt, max) batch and sequence."""
        def dims(t: IOTensor, k: int) -> Dims:
            return tuple(batch[k] if d == BATCH else seq[k] if d == SEQUENCE else int(d) for d in t.dims)
        return {t.name: (dims(t, 0), dims(t, 1), dims(t, 2)) for t in self.inputs(config)}

    def check_trt_profile(self, config: FlurkaConfig, name: str, mn: Dims, opt: Dims, mx: Dims, n_max: int) -> None:
        """ValueError naming the input when a profile does not fit it."""
        t = {t.name: t for t in self.inputs(config)}[name]
        fixed = [(i, d) for i, d in enumerate(t.dims) if isinstance(d, int)]
        for d in (mn, opt, mx):
            if len(d) != len(t.dims):
                raise ValueError(f"{name}: expected {'x'.join(str(x).upper() for x in t.dims)} shapes, got {d}")
            if fixed and any(d[i] != v for i, v in fixed):
                raise ValueError(f"{name}: fixed dims {[v for _, v in fixed]} of {list(t.dims)}, got {list(d)}")
        if SEQUENCE in t.dims and mx[t.dims.index(SEQUENCE)] > n_max:
            raise ValueError(f"{name}: profile max sequence length {mx[t.dims.index(SEQUENCE)]} exceeds the model's "
                             f"N_max {n_max}")
        if any(mn[i] < 1 for i, d in enumerate(t.dims) if d in (BATCH, SEQUENCE)):
            raise ValueError(f"{name}: batch and sequence length must be at least 1")

    # -- serving ----------------------------------------------------------------------------------------------
    def padding_invariant(self, config: FlurkaConfig) -> bool:
        """Whether zero-padding a request (mask 0) leaves its outputs unchanged, so requests of different
        lengths may share a batch."""
        return False

    def serving(self, config: FlurkaConfig, max_seq_len: int | None = None) -> ServingIO:
        seq = tuple(self.sequence_inputs(config))
        names = self.input_names(config)
        return ServingIO(
            inputs=tuple(names), outputs=tuple(self.output_names(config)), sequence_inputs=seq,
            per_token_outputs=tuple(t.name for t in self.outputs(config) if t.per_token),
            token_input=self.token_input if self.token_input in names else None,
            mask_input=self.mask_input if self.mask_input in names else None,
            padding_invariant=bool(seq) and self.padding_invariant(config),
            max_seq_len=(max_seq_len or config.max_seq_len) if seq else None,
            vocab_size=config.vocab_size if seq else None)
