"""The encoder-decoder family (task seq2seq, translation): source `input_ids` and `attention_mask` [batch,
sequence]; the decoder generates the target token by token from a decoder_start token.

In PyTorch the family trains (teacher forcing), verifies its three decoding forms against each other and
generates (greedy, sampling, beam) with cross states computed once per source. `export` writes a directory in
optimum's seq2seq layout (models/seq2seq_io.py): encoder_model.onnx, decoder_model.onnx (the first step, which
computes the cross states from the source), decoder_with_past_model.onnx (every later step) and
decoder_model_merged.onnx (both decoders behind an If on `use_cache_branch`, one file for every step).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import seq2seq_io
from ..seq2seq import FlurkaForSeq2SeqLM
from .base import BATCH, SEQUENCE, FamilySpec, Feed, FeedDriver, Head, IOTensor, Outputs, Shape, Step

if TYPE_CHECKING:
    from torch import nn

    from ..config import FlurkaConfig

TOKENS = (BATCH, SEQUENCE)
NOT_EXPORTED = ("a seq2seq model exports to a directory of ONNX files (encoder_model.onnx, decoder_model.onnx, "
                "decoder_with_past_model.onnx, decoder_model_merged.onnx), not one module; its TensorRT path is not "
                "built yet")
PARTS = tuple(seq2seq_io.PART_FILES.items())
VERIFY_STEPS = 8  # decoder steps after the first, in every verify case
FIRST_TOKENS = 3  # decoder tokens of the first step (the start token and two more)


class Seq2SeqSpec(FamilySpec):
    family = "seq2seq"
    order = 30
    heads = {"seq2seq": Head("seq2seq", FlurkaForSeq2SeqLM, "logits", (BATCH, "target_sequence", "vocab"))}
    generates = True
    token_input, mask_input = "input_ids", "attention_mask"

    def validate(self, config: FlurkaConfig) -> str | None:
        from ..config import causal_attention_error

        why = causal_attention_error(config.decoder_attention or "kernel-elu")
        return f"decoder_attention: {why}" if why else None

    def describe_attention(self, config: FlurkaConfig) -> str:
        return (f"encoder={config.attention} cross={seq2seq_io.cross_kind(config)} "
                f"decoder={seq2seq_io.decoder_config(config).attention}")

    def pre_norm_default(self) -> bool:
        return True

    def hook_layers(self, model: nn.Module) -> list[nn.Module]:
        return list(model.encoder.layers)

    def inputs(self, config: FlurkaConfig) -> list[IOTensor]:
        return [IOTensor(n, "int64", TOKENS) for n in ("input_ids", "attention_mask", "decoder_input_ids")]

    def export_module(self, model: nn.Module) -> nn.Module:
        raise ValueError(NOT_EXPORTED)

    def export_parts(self, config: FlurkaConfig) -> tuple[tuple[str, str], ...]:
        return PARTS

    def merged_parts(self, config: FlurkaConfig) -> tuple[tuple[str, str, str], ...]:
        return ((seq2seq_io.MERGED_FILE, "decoder", "decoder_with_past"),)

    def merged_feed(self, config: FlurkaConfig, part: str, feed: Feed, dtypes: dict[str, Any]) -> Feed:
        return seq2seq_io.merged_feed(config, part, feed, dtypes)

    def export_part(self, model: nn.Module, part: str, dtype: Any, max_seq_len: int) -> dict[str, Any]:
        config = model.config
        names = seq2seq_io.io_names(config, part)
        target = seq2seq_io.decoder_config(config).max_seq_len
        guards = {"encoder": {"input_ids": max_seq_len}, "decoder": {seq2seq_io.ENC_MASK: max_seq_len, seq2seq_io.DEC_MASK: target},
                  "decoder_with_past": {seq2seq_io.DEC_MASK: target}}[part]
        return {"module": seq2seq_io.export_module(model, part), "kwargs": seq2seq_io.example_inputs(config, part, dtype),
                "input_names": names[0], "output_names": names[1], "guards": guards,
                "dynamic_shapes": seq2seq_io.dynamic_shapes(config, part, max_seq_len)}

    def make_feed(self, config: FlurkaConfig, shape: Shape, seed: int = 0, float_dtype: str = "float32",
                  pad: bool = True) -> Feed:
        """A source batch (right padding: row i keeps fewer real tokens) and a target of the same length."""
        rng = np.random.default_rng(seed)
        b, n = shape
        mask = np.ones((b, n), np.int64)
        if pad and b > 1 and n > 1:
            for row in range(1, b):
                mask[row, max(1, n - (row * n) // (b + 1)):] = 0
        return {"input_ids": rng.integers(0, config.vocab_size, (b, n), dtype=np.int64), "attention_mask": mask,
                "decoder_input_ids": rng.integers(0, config.vocab_size, (b, n), dtype=np.int64)}

    def part_kwargs(self, config: FlurkaConfig, part: str, feeds: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of one part's module: the past_key_values.* feeds as one list, in input order."""
        names = seq2seq_io.io_names(config, part)[0]
        past = [feeds[n] for n in names if n.startswith(seq2seq_io.PAST_PREFIX)]
        kwargs = {n: feeds[n] for n in names if not n.startswith(seq2seq_io.PAST_PREFIX)}
        return {**kwargs, "past_key_values": past} if past else kwargs

    def verify_cases(self, config: FlurkaConfig, shapes: list[Shape], seed: int = 0,
                     float_dtype: str = "float32") -> list[FeedDriver]:
        """Per source shape: the encoder, the first decoder step with its cross states, VERIFY_STEPS steps with
        past, and one first step over all those tokens (it must equal the steps, in each runtime)."""
        cases: list[FeedDriver] = []
        for i, (b, n) in enumerate(shapes):
            feed = self.make_feed(config, (b, n), seed + i, float_dtype)
            tokens = np.random.default_rng(seed + 1000 + i).integers(0, config.vocab_size,
                                                                     (b, FIRST_TOKENS + VERIFY_STEPS))
            source = {k: feed[k] for k in (seq2seq_io.INPUT_IDS, seq2seq_io.ATTENTION_MASK)}
            cases.append(DecoderSteps(f"{b}x{n}+{VERIFY_STEPS}", source, tokens.astype(np.int64), FIRST_TOKENS))
        return cases

    def trt_unsupported(self, config: FlurkaConfig) -> str | None:
        return NOT_EXPORTED

    def serving(self, config: FlurkaConfig, max_seq_len: int | None = None) -> Any:
        """Served token by token (Triton's generate endpoints, serve/generate_decoders.py's Seq2SeqDecoder): the
        encoder and first decoder step prefill a stream, the decoder with past steps the streams in flight."""
        io = super().serving(config, max_seq_len)
        m = seq2seq_io
        roles = {"decoder": "seq2seq", "token_input": m.INPUT_IDS, "mask_input": m.ATTENTION_MASK,
                 "encoder_file": m.ENCODER_FILE, "decoder_file": m.DECODER_FILE, "with_past_file": m.DECODER_WITH_PAST_FILE,
                 "encoder_states_input": m.ENC_STATES, "encoder_mask_input": m.ENC_MASK, "decoder_mask_input": m.DEC_MASK,
                 "logits_output": m.LOGITS, "past_prefix": m.PAST_PREFIX, "present_prefix": m.PRESENT_PREFIX,
                 "max_target_len": str(m.decoder_config(config).max_seq_len)}
        return dataclasses.replace(io, padding_invariant=False, generation=tuple(roles.items()))


SPEC = Seq2SeqSpec()


class DecoderSteps(FeedDriver):
    """One verify case of an exported seq2seq directory, run by `run(feed, part)`: the encoder over the source,
    the first decoder step over `first` target tokens (its cross states reported on their own), then one step
    per remaining token with the runtime's own past, then a first step over every token at once."""

    def __init__(self, label: str, source: Feed, tokens: np.ndarray, first: int) -> None:
        self.label, self.first_feed, self.tokens, self.first = label, source, tokens, first

    def _first_step(self, run: Any, hidden: np.ndarray, tokens: np.ndarray) -> Outputs:
        b, t = tokens.shape
        return run({seq2seq_io.INPUT_IDS: tokens, seq2seq_io.ENC_STATES: hidden,
                    seq2seq_io.ENC_MASK: self.first_feed[seq2seq_io.ATTENTION_MASK],
                    seq2seq_io.DEC_MASK: np.ones((b, t), np.int64)}, "decoder")

    def drive(self, run: Any) -> list[Step]:
        enc = run(self.first_feed, "encoder")
        hidden = enc[seq2seq_io.LAST_HIDDEN]
        out = self._first_step(run, hidden, self.tokens[:, :self.first])
        steps: list[Step] = [("encoder", enc),
                             ("cross states", {k: v for k, v in out.items() if seq2seq_io.is_cross_state(k)}),
                             ("decoder", {k: v for k, v in out.items() if not seq2seq_io.is_cross_state(k)})]
        past = seq2seq_io.next_past(out, {})
        for t in range(self.first, self.tokens.shape[1]):
            out = run({seq2seq_io.INPUT_IDS: self.tokens[:, t:t + 1],
                       seq2seq_io.DEC_MASK: np.ones((self.tokens.shape[0], t + 1), np.int64), **past},
                      "decoder_with_past")
            past = seq2seq_io.next_past(out, past)
            steps.append((f"step {t - self.first + 1}", out))
        steps.append((f"decoder T+{len(steps) - 3}", self._first_step(run, hidden, self.tokens)))
        return steps

    def consistency(self, steps: list[Step]) -> list[tuple[str, Outputs, Outputs]]:
        """The one long first step's logits at the last K+1 positions equal the first step's last and each step's."""
        logits = seq2seq_io.LOGITS
        outs = [o[logits] for _, o in steps[2:-1]]
        stepwise = np.concatenate([outs[0][:, -1:], *outs[1:]], axis=1)
        whole = steps[-1][1][logits][:, -stepwise.shape[1]:]
        k = stepwise.shape[1] - 1
        return [(f"decoder T+{k} vs T + {k} steps", {logits: stepwise}, {logits: whole})]
