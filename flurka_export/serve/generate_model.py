"""Triton Python-backend model that generates token by token (`model.py` of the families that generate): a decoupled
model behind Triton's generate extension, `POST /v2/models/NAME/generate` and `generate_stream` (server-sent events).
Self-contained like triton_model.py: numpy, onnxruntime, `triton_python_backend_utils` (and `tokenizers` with a
tokenizer.json), and beside it generate_decoders.py (the decoders of each family), beam_core.py and sampling.py
(flurka_export.generate's own).

Requests: the TensorRT-LLM ensemble's fields (`text_input` or the token ids, `max_tokens`, `beam_width`, `temperature`,
`top_k`, `top_p`, `random_seed`, `end_id`, `stream`) or vLLM's `sampling_parameters` (JSON). Responses: `text_output`
(or `output_ids`), one per token with `stream` true, else one in all. Continuous batching: `execute` checks each request (a bad one gets one error) and hands it to one scheduler thread,
which prefills each new stream alone and then advances every stream in flight by one token per ONNX Runtime call,
the pasts stacked (constant-size states concatenated, KV caches left-padded with mask 0). A cancelled request
(checked every step) or one older than `stream_timeout_s` ends and frees its state. No `from __future__ import
annotations` here: dataclasses would look this module up in sys.modules.
"""

import ctypes
import dataclasses
import json
import os
import queue
import threading
import time

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


def _load(file_name: str, directory: str = os.path.dirname(os.path.abspath(__file__))):
    """A module file from this file's directory (the version directory holds model.py, generate_decoders.py,
    beam_core.py and sampling.py; Triton does not put it on sys.path)."""
    import importlib.util
    import sys

    path = os.path.join(directory, file_name)
    if not os.path.isfile(path):  # in the package itself (tests): beam_core.py, sampling.py are in generate/
        path = os.path.join(os.path.dirname(directory), "generate", file_name)
    spec = importlib.util.spec_from_file_location(f"flurka_{file_name[:-3]}_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_decoders, _beam, _sampling = _load("generate_decoders.py"), _load("beam_core.py"), _load("sampling.py")
RequestError, Sampling, DECODERS = _decoders.RequestError, _decoders.Sampling, _decoders.DECODERS


def choose(logits: np.ndarray, s: Sampling, rng: np.random.Generator) -> int:
    """The next token from one row of logits [V]: flurka_export.generate's own sampling (sampling.py)."""
    return int(_sampling.next_tokens(logits[None], s, rng)[0])

_set_capsule_name = ctypes.pythonapi.PyCapsule_SetName
_set_capsule_name.argtypes = [ctypes.py_object, ctypes.c_char_p]
_set_capsule_name.restype = ctypes.c_int




@dataclasses.dataclass
class Stream:
    """One request in flight: its options, tokens so far, state and the logits of its next token."""

    request: object
    sender: object
    prompt: list[int]
    sampling: Sampling
    eos: int | None
    streaming: bool
    tokenizer: object  # None: token ids out
    sent: str = ""  # the text sent so far
    started: float = dataclasses.field(default_factory=time.monotonic)
    tokens: list = dataclasses.field(default_factory=list)
    state: dict | None = None
    logits: np.ndarray | None = None
    rng: np.random.Generator | None = None
    gone: bool = False  # a send failed (the client went away): the stream ends at the next step
    beam: object = None  # beam_core.BeamRun when beam_width > 1: its rows' states and next tokens below
    states: list = dataclasses.field(default_factory=list)
    next_tokens: list = dataclasses.field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.sampling.beam_width if self.beam is not None else 1

    def output(self, new: list[int], upto: int) -> list:
        """The response tensors for the `new` tokens, the row's first `upto` tokens chosen so far."""
        if self.tokenizer is None:
            return [_tensor("output_ids", np.asarray(new, np.int32))]
        text = self.tokenizer.decode(self.tokens[:upto])  # the whole row: byte-level BPE may need several ids a character
        piece, self.sent = ("", self.sent) if text.endswith("\ufffd") else (text[len(self.sent):], text)
        return [pb_utils.Tensor("text_output", np.array([piece.encode()], dtype=np.object_))]


def _tensor(name: str, array: np.ndarray):
    """Numbers go out through DLPack (see triton_model.py: the stub may be built for another numpy ABI)."""
    capsule = np.ascontiguousarray(array).__dlpack__()
    tensor = pb_utils.Tensor.from_dlpack(name, capsule)
    _set_capsule_name(capsule, b"used_dltensor")  # the stub owns it now: numpy's destructor must leave it
    return tensor


def _error(message: str, cancelled: bool = False):
    code = getattr(pb_utils.TritonError, "CANCELLED", None) if cancelled else None
    err = pb_utils.TritonError(message, code) if code is not None else pb_utils.TritonError(message)
    return pb_utils.InferenceResponse(output_tensors=[], error=err)


class Scheduler:
    """The one thread that runs the decoder: admits new streams (a prefill each), then advances every stream
    in flight by one token per ONNX Runtime call. Streams end on eos, max_tokens, cancellation or timeout."""

    def __init__(self, decoder, max_streams: int, timeout_s: float) -> None:
        self.decoder, self.max_streams, self.timeout_s = decoder, max_streams, timeout_s
        self.pending: list[Stream] = []
        self.active: list[Stream] = []
        self.cond = threading.Condition()
        self.stopping = False
        self.steps = self.rows = 0  # decoder.step calls, and the rows they ran (tests read the batching here)
        self.thread = threading.Thread(target=self._loop, name="flurka-generate", daemon=True)
        # Responses go out from their own thread, in order, while ONNX Runtime (which releases the GIL) runs the
        # next step: a send is an IPC round trip to the server, eight of them a step at eight streams.
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.sender = threading.Thread(target=self._send_loop, name="flurka-generate-send", daemon=True)

    def start(self) -> "Scheduler":
        self.sender.start()
        return self.thread.start() or self

    def _send_loop(self) -> None:
        while True:
            item = self.outbox.get()
            if item is None:
                return
            s, make, final = item
            if s.gone:  # an earlier response failed: the stream has ended
                continue
            try:
                response = make()
            except Exception as e:  # noqa: BLE001 - the stream ends with the reason, the server goes on
                response, final = _error(f"could not build the response: {type(e).__name__}: {e}"), True
            try:
                s.sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if final else 0)
            except Exception:  # noqa: BLE001 - a closed or cancelled request
                s.gone = True
            if final:
                s.gone = True  # nothing may follow a final response

    def submit(self, stream: Stream) -> None:
        with self.cond:
            self.pending.append(stream)
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.thread.join(timeout=10)
        for s in self.pending + self.active:
            self._send(s, _error("the server is shutting down"), final=True)
        self.outbox.put(None)
        self.sender.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.stopping and not self.pending and not self.active:
                    self.cond.wait()
                if self.stopping:
                    return
                room = max(0, self.max_streams - len(self.active))
                new, self.pending = self.pending[:room], self.pending[room:]
            try:
                self.tick(new)
            except Exception as e:  # noqa: BLE001 - every stream gets the reason, the server keeps serving
                for s in new + self.active:
                    self._send(s, _error(f"ONNX Runtime failed: {type(e).__name__}: {e}"), final=True)
                self.active = []

    def tick(self, new: list[Stream]) -> None:
        """Prefill the new streams, choose one token for each stream, end the finished, step the rest."""
        for s in new:
            s.logits, s.state = self.decoder.prefill(s.prompt)
            s.rng = np.random.default_rng(s.sampling.seed)
            if s.sampling.beam_width > 1:  # K rows from the one prefill; only beam 0 is live at first
                s.beam = _beam.BeamRun(s.sampling.beam_options(), s.eos)
                s.states, s.logits = [s.state] * s.rows, np.repeat(s.logits[None], s.rows, axis=0)
            self.active.append(s)
        running = []
        for s in self.active:
            if self._ended_early(s):
                continue
            if s.beam is not None:
                if self._beam_step(s):
                    running.append(s)
                continue
            token = choose(s.logits, s.sampling, s.rng)
            s.tokens.append(token)
            done = token == s.eos or len(s.tokens) >= s.sampling.max_tokens
            if s.streaming or done:
                new_tokens, upto = ([token] if s.streaming else list(s.tokens)), len(s.tokens)
                self._post(s, lambda s=s, t=new_tokens, n=upto: pb_utils.InferenceResponse(s.output(t, n)), done)
            if not done:
                running.append(s)
        self.active = running
        if running:
            states = [x for s in running for x in (s.states if s.beam is not None else [s.state])]
            tokens = [x for s in running for x in (s.next_tokens if s.beam is not None else [s.tokens[-1]])]
            logits, states = self.decoder.step(states, tokens)
            self.steps, self.rows = self.steps + 1, self.rows + len(tokens)
            i = 0
            for s in running:
                if s.beam is not None:
                    s.logits, s.states = logits[i:i + s.rows], states[i:i + s.rows]
                else:
                    s.logits, s.state = logits[i], states[i]
                i += s.rows

    def _beam_step(self, s: Stream) -> bool:
        """One beam-search step: False when the search is over (the best hypothesis is sent, in one response)."""
        done, rows, tokens = s.beam.advance(s.logits)
        if done:
            s.tokens = s.beam.best()[0]
            self._post(s, lambda s=s, t=list(s.tokens): pb_utils.InferenceResponse(s.output(t, len(t))), True)
            return False
        s.states, s.next_tokens = [s.states[r] for r in rows], [int(t) for t in tokens]
        return True

    def _ended_early(self, s: Stream) -> bool:
        if s.gone:  # its client went away: nothing more can reach it
            return True
        if getattr(s.request, "is_cancelled", lambda: False)():
            self._send(s, _error("request cancelled by the client", cancelled=True), final=True)
            return True
        if time.monotonic() - s.started > self.timeout_s:
            self._send(s, _error(f"request ended after stream_timeout_s={self.timeout_s:g} s"), final=True)
            return True
        return False

    def _post(self, s: Stream, make, final: bool) -> None:
        """Queue a response (built by `make` on the sender thread) behind the stream's earlier ones."""
        self.outbox.put((s, make, final))

    def _send(self, s: Stream, response, final: bool) -> None:
        self._post(s, lambda: response, final)


def _input(request, name: str):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    try:  # numbers through DLPack, whatever numpy ABI the stub was built for (see triton_model.py)
        array = np.array(np.from_dlpack(tensor), copy=True)
    except Exception:  # noqa: BLE001 - strings (BYTES) have no DLPack form
        array = tensor.as_numpy()
    return array.reshape(-1)


def _scalar(array):
    if array is None or array.size == 0:
        return None
    value = array[0]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value.item() if hasattr(value, "item") else value


def _parameter(key: str, value: str):
    if key == "early_stopping":
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"early_stopping={value!r} is not true or false")
        return value.lower() in ("true", "1")
    return float(value) if key in ("temperature", "top_p", "length_penalty") else int(value)


def _sampling_parameters(text: str) -> dict:
    """vLLM's sampling_parameters: a JSON object; its values may be strings ("0.7")."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RequestError(f"sampling_parameters is not valid JSON: {e}") from None
    unknown = sorted(set(data) - set(_decoders.SAMPLING_KEYS)) if isinstance(data, dict) else None
    if unknown is None or unknown:
        raise RequestError("sampling_parameters must be a JSON object" if unknown is None else
                           f"sampling_parameters has {', '.join(unknown)}, which this server does not take; "
                           f"allowed: {', '.join(_decoders.SAMPLING_KEYS)}")
    try:
        return {k: _parameter(k, v) if isinstance(v, str) else v for k, v in data.items()}
    except ValueError as e:
        raise RequestError(f"sampling_parameters holds a value that is not a number: {e}") from None


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(params.get("intra_op_threads") or 0)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if params.get("allow_spinning", "0") != "1":
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        names = json.loads(params["generation"])
        self.decoder = DECODERS[names["decoder"]](version_dir, params, opts, names)
        self.ids_field = names["token_input"]  # token ids in a request without text (the model's input name)
        number = lambda key: int(params[key]) if params.get(key) else None  # noqa: E731
        self.max_seq_len, self.vocab_size = number("max_seq_len"), number("vocab_size")
        self.eos, self.bos = number("eos_token_id"), number("bos_token_id")
        self.tokenizer = None
        tokenizer_file = os.path.join(version_dir, "tokenizer.json")
        if os.path.isfile(tokenizer_file) and params.get("string_fields", "1") == "1":  # "0": ids in and out
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(tokenizer_file)
        self.scheduler = Scheduler(self.decoder, number("max_streams") or 8,
                                   float(params.get("stream_timeout_s") or 600)).start()

    def _prompt(self, request) -> tuple[list[int], bool]:
        """The prompt's token ids, and whether it came as text."""
        if self.tokenizer is None and pb_utils.get_input_tensor_by_name(request, "text_input") is not None:
            raise RequestError(f"this model has no tokenizer: send {self.ids_field} (token ids), not text_input")
        text, ids = _scalar(_input(request, "text_input")), _input(request, self.ids_field)  # strings: see README
        if text is not None and ids is not None:
            raise RequestError(f"send text_input or {self.ids_field}, not both")
        if text is not None:
            return list(self.tokenizer.encode(text).ids), True
        if ids is None:
            raise RequestError(f"send text_input (a string) or {self.ids_field} (token ids)" if self.tokenizer else
                               f"send {self.ids_field} (a list of token ids): this server takes token ids (no "
                               f"tokenizer, or string fields off: see the serve start-up note)")
        return [int(t) for t in ids], False

    def _sampling(self, request) -> Sampling:
        fields = {key: _scalar(_input(request, name)) for key, name in
                  (("max_tokens", "max_tokens"), ("temperature", "temperature"), ("top_k", "top_k"),
                   ("top_p", "top_p"), ("seed", "random_seed"), ("beam_width", "beam_width"),
                   ("length_penalty", "length_penalty"), ("early_stopping", "early_stopping"))}
        fields = {k: v for k, v in fields.items() if v is not None}
        extra = _scalar(_input(request, "sampling_parameters"))
        if extra is not None:
            fields.update(_sampling_parameters(extra))
        return Sampling(**fields).check()

    def parse(self, request) -> Stream:
        prompt, is_text = self._prompt(request)
        sampling = self._sampling(request)
        if not prompt and self.bos is not None:
            prompt = [self.bos]
        if not prompt:
            raise RequestError("the prompt is empty; give at least one token")
        if self.vocab_size is not None:
            bad = [t for t in prompt if not 0 <= t < self.vocab_size]
            if bad:
                raise RequestError(f"{self.ids_field} has token id {bad[0]} outside the vocabulary (0..{self.vocab_size - 1})")
        why = self.decoder.limit_error(len(prompt), sampling.max_tokens)
        if why:
            raise RequestError(why)
        end = _scalar(_input(request, "end_id"))
        stream = bool(_scalar(_input(request, "stream")) or False)
        return Stream(request, request.get_response_sender(), prompt, sampling, self.eos if end is None else int(end),
                      stream, self.tokenizer if is_text else None)

    def execute(self, requests: list) -> None:
        for request in requests:
            try:
                stream = self.parse(request)
            except RequestError as e:
                request.get_response_sender().send(_error(str(e)), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                continue
            self.scheduler.submit(stream)
        return None

    def finalize(self) -> None:
        self.scheduler.stop()
