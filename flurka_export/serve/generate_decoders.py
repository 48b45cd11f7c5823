"""The decoders and request options of the generating Triton model (generate_model.py loads this file from its own
directory): a decoder turns a prompt into (logits of the next token, state) and advances a batch of streams by one
token, their states stacked. Self-contained: numpy and onnxruntime only.

- CausalDecoder: one ONNX file that prefills and steps (the lm family).
- Seq2SeqDecoder: an export directory's encoder, first decoder step and decoder with past (the seq2seq family).
"""

import dataclasses
import math
import os
import types

import numpy as np
import onnxruntime as ort

SAMPLING_KEYS = ("max_tokens", "temperature", "top_k", "top_p", "seed", "beam_width", "length_penalty",
                 "early_stopping")  # vLLM's sampling_parameters


class RequestError(ValueError):
    """A bad request: its message goes back to the client (one error response)."""


@dataclasses.dataclass
class Sampling:
    """Greedy unless temperature > 0; then temperature, top-k, top-p and a draw (flurka_export.generate's order)."""

    max_tokens: int = 16
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    beam_width: int = 1  # > 1: beam search (transformers' algorithm, generate/beam_core.py), greedy rows
    length_penalty: float = 1.0
    early_stopping: bool = False

    @property
    def samples(self) -> bool:  # what generate/sampling.py asks
        return self.temperature > 0

    def beam_options(self) -> "types.SimpleNamespace":
        return types.SimpleNamespace(num_beams=self.beam_width, max_new_tokens=self.max_tokens,
                                     length_penalty=float(self.length_penalty), early_stopping=bool(self.early_stopping))

    def check(self) -> "Sampling":
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise RequestError(f"max_tokens={self.max_tokens!r} is not allowed; it must be an integer >= 1")
        if not (isinstance(self.temperature, int | float) and math.isfinite(self.temperature) and self.temperature >= 0):
            raise RequestError(f"temperature={self.temperature!r} is not allowed; it must be a finite number >= 0 "
                               "(0: greedy)")
        if self.top_k == -1:  # vLLM's "off"
            self.top_k = 0
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise RequestError(f"top_k={self.top_k!r} is not allowed; it must be an integer >= 0 (0: off)")
        if self.top_p == 0:  # TensorRT-LLM's clients send 0 for "off"
            self.top_p = 1.0
        if not (isinstance(self.top_p, int | float) and 0 < self.top_p <= 1):
            raise RequestError(f"top_p={self.top_p!r} is not allowed; it must be in (0, 1] (1 or 0: off)")
        if isinstance(self.beam_width, bool) or not isinstance(self.beam_width, int) or not 1 <= self.beam_width <= 16:
            raise RequestError(f"beam_width={self.beam_width!r} is not allowed; it must be an integer from 1 to 16")
        if not (isinstance(self.length_penalty, int | float) and math.isfinite(self.length_penalty)):
            raise RequestError(f"length_penalty={self.length_penalty!r} is not allowed; it must be a finite number")
        if self.beam_width > 1 and (self.temperature > 0 or self.top_k or self.top_p < 1):
            raise RequestError(f"beam_width={self.beam_width} searches greedily; temperature, top_k and top_p apply to "
                               "beam_width 1 (sampling): send one or the other")
        return self


class CausalDecoder:
    """One ONNX file that prefills and steps (the lm family). A stream's state is {"past": {input name: array
    with batch 1}, "n": tokens seen}. The decoder interface of the scheduler: `prefill(ids) -> (logits [V],
    state)` and `step(states, tokens) -> (logits [B, V], states)`; another family plugs in with the same two."""

    def __init__(self, version_dir: str, params: dict, opts: ort.SessionOptions, names: dict[str, str]) -> None:
        self.session = _session(version_dir, params.get("onnx_file") or "model.onnx", opts)
        self.names, self.max_seq_len = names, _number(params, "max_seq_len")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.past = _past_inputs(self.session, names["past_prefix"])

    def _run(self, ids: np.ndarray, mask: np.ndarray, pos: np.ndarray, past: dict) -> tuple[np.ndarray, dict]:
        n = self.names
        feed = {n["token_input"]: ids, n["mask_input"]: mask, n["position_input"]: pos, **past}
        out = dict(zip(self.output_names, self.session.run(None, feed), strict=True))
        pre = n["present_prefix"]
        present = {n["past_prefix"] + k[len(pre):]: v for k, v in out.items() if k.startswith(pre)}
        return out[n["logits_output"]][:, -1].astype(np.float32), present

    def limit_error(self, prompt_len: int, max_tokens: int) -> "str | None":
        if self.max_seq_len is not None and prompt_len + max_tokens > self.max_seq_len:
            return (f"the prompt has {prompt_len} tokens; with max_tokens={max_tokens} the context would reach "
                    f"{prompt_len + max_tokens} > max_seq_len={self.max_seq_len}, the model's limit (use at most "
                    f"max_tokens={max(0, self.max_seq_len - prompt_len)})")
        return None

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, dict]:
        t = len(ids)
        past = {k: np.zeros(shape, dtype) for k, (_, shape, dtype) in self.past.items()}
        logits, present = self._run(np.asarray([ids], np.int64), np.ones((1, t), np.int64),
                                    np.arange(t, dtype=np.int64)[None], past)
        return logits[0], {"past": present, "n": t}

    def step(self, states: list[dict], tokens: list[int]) -> tuple[np.ndarray, list[dict]]:
        lengths = [s["n"] for s in states]
        mask = _left_mask(lengths, 1)
        logits, present = self._run(np.asarray(tokens, np.int64)[:, None], mask,
                                    np.asarray(lengths, np.int64)[:, None], _stack(self.past, states))
        return logits, _unstack(self.past, present, states)


def _session(version_dir: str, file_name: str, opts: ort.SessionOptions) -> ort.InferenceSession:
    return ort.InferenceSession(os.path.join(version_dir, file_name), opts, providers=["CPUExecutionProvider"])


def _number(params: dict, key: str) -> "int | None":
    return int(params[key]) if params.get(key) else None


def _past_inputs(session: ort.InferenceSession, prefix: str) -> dict:
    """input name -> (growing axis or None, shape with batch 1 and 0 there, dtype) of every past input: the first
    symbolic dim after batch grows (a KV cache's tokens, a source's rows); constant-size states have none."""
    past = {}
    for i in session.get_inputs():
        if i.name.startswith(prefix):
            grow = next((a for a, d in enumerate(i.shape) if a > 0 and not isinstance(d, int)), None)
            shape = tuple(1 if a == 0 else 0 if a == grow else d for a, d in enumerate(i.shape))
            past[i.name] = (grow, shape, np.float16 if "float16" in i.type else np.float32)
    return past


def _left_mask(lengths: list, new: int) -> np.ndarray:
    """[B, max + new]: each row's own tokens and the new ones, left-padded with 0."""
    p = max(lengths)
    mask = np.zeros((len(lengths), p + new), np.int64)
    for i, n in enumerate(lengths):
        mask[i, p - n:] = 1
    return mask


def _stack(past_inputs: dict, states: list) -> dict:
    """The streams' pasts as one batch: constant-size states concatenated, growing ones left-padded with zeros to
    the longest (their mask is 0 there: the decoder mask, or a softmax cross state's own mask input)."""
    batch = states[0].get("batch")
    same = batch is not None and len(next(iter(batch[0].values()))) == len(states) and all(
        s.get("batch") is not None and s["batch"][0] is batch[0] and s["batch"][1] == i for i, s in enumerate(states))
    same_batch = batch[0] if same else None
    out = {}
    for name, (grow, _, _) in past_inputs.items():
        parts = [s["past"][name] for s in states]
        if grow is None and same_batch and name in same_batch:  # the streams of the last step, in order: its output
            out[name] = same_batch[name]
            continue
        if grow is not None:
            longest = max(a.shape[grow] for a in parts)
            parts = [np.pad(a, [(longest - a.shape[grow], 0) if ax == grow else (0, 0) for ax in range(a.ndim)])
                     for a in parts]
        out[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return out


def _unstack(past_inputs: dict, present: dict, states: list) -> list:
    """Each stream's new state: its row of every present output (a growing one cut to its own tokens + 1); a
    past the step does not return (a seq2seq cross state) stays the stream's own."""
    new = []
    for i, s in enumerate(states):
        own = {}
        for name, (grow, _, _) in past_inputs.items():
            if name not in present:
                own[name] = s["past"][name]
                continue
            a = present[name][i:i + 1]
            if grow is not None:
                a = np.ascontiguousarray(np.take(a, range(a.shape[grow] - s["n"] - 1, a.shape[grow]), axis=grow))
            own[name] = a
        new.append({"past": own, "n": s["n"] + 1, "batch": (present, i)})  # row i of this step's present
    return new


class Seq2SeqDecoder:
    """An exported seq2seq directory (encoder_model.onnx, decoder_model.onnx, decoder_with_past_model.onnx): the
    prefill encodes the source and runs the decoder_start token, which returns each layer's cross state; a step
    batches the streams' self-attention states and cross states and feeds one target token each."""

    def __init__(self, version_dir: str, params: dict, opts: ort.SessionOptions, names: dict[str, str]) -> None:
        self.names = names
        self.encoder, self.first, self.later = (_session(version_dir, names[k], opts) for k in
                                                ("encoder_file", "decoder_file", "with_past_file"))
        self.later_outputs = [o.name for o in self.later.get_outputs()]
        self.first_outputs = [o.name for o in self.first.get_outputs()]
        self.past = _past_inputs(self.later, names["past_prefix"])
        self.max_source, self.max_target = _number(params, "max_seq_len"), int(names["max_target_len"])
        start = [_number(params, k) for k in ("decoder_start_token_id", "bos_token_id", "pad_token_id",
                                              "eos_token_id")]
        self.start = next((t for t in start if t is not None), 0)  # GenerationConfig.decoder_start's order

    def limit_error(self, prompt_len: int, max_tokens: int) -> "str | None":
        if self.max_source is not None and prompt_len > self.max_source:
            return f"the source has {prompt_len} tokens > max_seq_len={self.max_source}, the encoder's limit"
        if max_tokens + 1 > self.max_target:
            return (f"max_tokens={max_tokens} + the start token > max_target_len={self.max_target}, the decoder's "
                    f"positions (use at most max_tokens={self.max_target - 1})")
        return None

    def _present(self, names: list, values: list) -> tuple:
        n = self.names
        out = dict(zip(names, values, strict=True))
        pre = n["present_prefix"]
        present = {n["past_prefix"] + k[len(pre):]: v for k, v in out.items() if k.startswith(pre)}
        return out[n["logits_output"]][:, -1].astype(np.float32), present

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, dict]:
        n = self.names
        src, mask = np.asarray([ids], np.int64), np.ones((1, len(ids)), np.int64)
        hidden = self.encoder.run(None, {n["token_input"]: src, n["mask_input"]: mask})[0]
        feed = {n["token_input"]: np.asarray([[self.start]], np.int64), n["encoder_states_input"]: hidden,
                n["encoder_mask_input"]: mask, n["decoder_mask_input"]: np.ones((1, 1), np.int64)}
        logits, present = self._present(self.first_outputs, self.first.run(None, feed))
        return logits[0], {"past": present, "n": 1}

    def step(self, states: list[dict], tokens: list[int]) -> tuple[np.ndarray, list[dict]]:
        n = self.names
        feed = {n["token_input"]: np.asarray(tokens, np.int64)[:, None],
                n["decoder_mask_input"]: _left_mask([s["n"] for s in states], 1), **_stack(self.past, states)}
        logits, present = self._present(self.later_outputs, self.later.run(None, feed))
        return logits, _unstack(self.past, present, states)


DECODERS = {"causal": CausalDecoder, "seq2seq": Seq2SeqDecoder}
