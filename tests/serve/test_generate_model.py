"""The generating model.py (serve/generate_model.py) without a server: Triton's `triton_python_backend_utils`
is replaced by a stand-in, the scheduler thread runs as in Triton, and its tokens are held equal to
flurka_export.generate's on the same ONNX file (greedy over concurrent streams batched together, and sampling)."""

import json
import threading
import types

import numpy as np
import pytest

from flurka_export.generate import GenerationConfig, OrtDecoder, SamplingOptions, generate
from flurka_export.models.exported import ExportedModel
from flurka_export.serve.generate_repository import generate_config_pbtxt
from flurka_export.serve.repository import model_facts

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")

from tests.serve.fake_triton import FakeResponse, FakeTensor, load_backend_model  # noqa: E402

FINAL = 1


class FakeSender:
    def __init__(self):
        self.responses, self.done = [], threading.Event()

    def send(self, response=None, flags=0):
        self.responses.append(response)
        if flags & FINAL:
            self.done.set()


class FakeRequest:
    def __init__(self, **fields):
        self.tensors = {k: FakeTensor(k, np.atleast_1d(np.asarray(v, dtype=object if isinstance(v, str) else None)))
                        for k, v in fields.items()}
        self.sender, self.cancelled = FakeSender(), False

    def get_response_sender(self):
        return self.sender

    def is_cancelled(self):
        return self.cancelled

    def tokens(self, timeout=30):
        assert self.sender.done.wait(timeout), "no final response"
        errors = [r.error.message() for r in self.sender.responses if r is not None and r.error is not None]
        if errors:
            return errors
        return [int(t) for r in self.sender.responses for t in r.outputs["output_ids"]]


class FakeError:
    CANCELLED = 7

    def __init__(self, message, code=None):
        self._message, self.code = message, code

    def message(self):
        return self._message


def fake_utils():
    mod = types.ModuleType("triton_python_backend_utils")
    mod.Tensor, mod.InferenceResponse, mod.TritonError = FakeTensor, FakeResponse, FakeError
    mod.TRITONSERVER_RESPONSE_COMPLETE_FINAL = FINAL
    mod.get_input_tensor_by_name = lambda request, name: request.tensors.get(name)
    return mod


def load_model(monkeypatch, onnx_path, tmp_path, max_streams=8):
    text = generate_config_pbtxt("m", model_facts(onnx_path), max_streams=max_streams, instances=1, threads=1)
    return load_backend_model(monkeypatch, fake_utils(), "generate_model.py", text, onnx_path, tmp_path)


def direct(onnx_path, prompt, options):
    config = ExportedModel.read(onnx_path).config
    return generate(OrtDecoder(onnx_path, config), [prompt], options, GenerationConfig())[0]


PROMPTS = [[1, 2, 3], [5], list(range(10, 30)), [7, 7, 7, 7, 7, 9], [100, 3], [42] * 11]


@pytest.mark.parametrize("which", ["kernel_lm", "softmax_lm"])
def test_concurrent_greedy_streams_equal_generate(monkeypatch, tmp_path, request, which):
    onnx_path = request.getfixturevalue(which)
    model = load_model(monkeypatch, onnx_path, tmp_path)
    try:
        requests = [FakeRequest(input_ids=np.array(p, np.int32), max_tokens=np.int32(12 + i), stream=True)
                    for i, p in enumerate(PROMPTS)]
        model.execute(requests)
        for i, (p, r) in enumerate(zip(PROMPTS, requests, strict=True)):
            assert r.tokens() == direct(onnx_path, p, SamplingOptions(max_new_tokens=12 + i)), f"stream {i}"
            assert len(r.sender.responses) == 12 + i  # one response per token
        sched = model.scheduler
        assert sched.rows > sched.steps, "the streams were never stepped together"
        assert sched.active == [] and sched.pending == []
    finally:
        model.finalize()


def test_sampling_equals_generate_and_one_response_without_stream(monkeypatch, kernel_lm, tmp_path):
    model = load_model(monkeypatch, kernel_lm, tmp_path)
    try:
        r = FakeRequest(input_ids=np.array([4, 5, 6], np.int32),
                        sampling_parameters=json.dumps({"max_tokens": 20, "temperature": "0.8", "top_k": 50,
                                                        "top_p": 0.9, "seed": 3}))
        model.execute([r])
        want = direct(kernel_lm, [4, 5, 6], SamplingOptions(max_new_tokens=20, greedy=False, temperature=0.8,
                                                             top_k=50, top_p=0.9, seed=3))
        assert r.tokens() == want and len(r.sender.responses) == 1
    finally:
        model.finalize()


BAD = [
    (dict(input_ids=np.array([1, 500], np.int32)), "token id 500 outside the vocabulary (0..127)"),
    (dict(input_ids=np.arange(60, dtype=np.int32), max_tokens=np.int32(10)), "> max_seq_len=64"),
    (dict(input_ids=np.array([1], np.int32), temperature=np.float32(-1)), "temperature=-1.0 is not allowed"),
    (dict(input_ids=np.array([1], np.int32), top_p=np.float32(1.5)), "top_p=1.5 is not allowed"),
    (dict(input_ids=np.array([1], np.int32), max_tokens=np.int32(0)), "max_tokens=0 is not allowed"),
    (dict(input_ids=np.array([1], np.int32), beam_width=np.int32(0)), "beam_width=0 is not allowed"),
    (dict(input_ids=np.array([1], np.int32), beam_width=np.int32(2), temperature=np.float32(0.7)),
     "beam_width=2 searches greedily"),
    (dict(input_ids=np.array([1], np.int32), sampling_parameters='{"early_stopping": "maybe"}'),
     "not true or false"),
    (dict(input_ids=np.array([1], np.int32), sampling_parameters="{x"), "sampling_parameters is not valid JSON"),
    (dict(input_ids=np.array([1], np.int32), sampling_parameters='{"n": 2}'), "does not take"),
    (dict(text_input="hello"), "no tokenizer: send input_ids"),
    (dict(), "send input_ids"),
]


def test_beam_requests_equal_beam_search_while_greedy_streams_run_beside_them(monkeypatch, request, tmp_path):
    from flurka_export.generate import BeamOptions, beam_search

    onnx_path = request.getfixturevalue("softmax_lm")  # KV caches of different lengths, reordered per beam
    config = ExportedModel.read(onnx_path).config
    model = load_model(monkeypatch, onnx_path, tmp_path)
    try:
        cases = [([1, 2, 3], 3, 1.0, False), ([5], 2, 0.5, True), (list(range(10, 30)), 4, 2.0, False)]
        beams = [FakeRequest(input_ids=np.array(p, np.int32), max_tokens=np.int32(10), beam_width=np.int32(k),
                             stream=True, sampling_parameters=json.dumps({"length_penalty": str(lp),
                                                                          "early_stopping": es}))
                 for p, k, lp, es in cases]
        greedy = FakeRequest(input_ids=np.array([7, 8], np.int32), max_tokens=np.int32(12), stream=True)
        model.execute([*beams, greedy])
        for r, (p, k, lp, es) in zip(beams, cases, strict=True):
            want = beam_search(OrtDecoder(onnx_path, config), [p], BeamOptions(num_beams=k, max_new_tokens=10,
                                                                              length_penalty=lp, early_stopping=es))
            assert r.tokens() == want[0] and len(r.sender.responses) == 1  # the best hypothesis, once
        assert greedy.tokens() == direct(onnx_path, [7, 8], SamplingOptions(max_new_tokens=12))
        assert model.scheduler.rows > 3 * model.scheduler.steps  # beams and streams stepped in one batch
    finally:
        model.finalize()


def test_bad_requests_get_one_error_and_the_rest_are_served(monkeypatch, kernel_lm, tmp_path):
    model = load_model(monkeypatch, kernel_lm, tmp_path)
    try:
        bad = [FakeRequest(**fields) for fields, _ in BAD]
        good = FakeRequest(input_ids=np.array([1, 2], np.int32), max_tokens=np.int32(5))
        model.execute([*bad, good])
        for r, (_, message) in zip(bad, BAD, strict=True):
            assert len(r.sender.responses) == 1 and r.sender.done.is_set()
            assert message in r.tokens()[0], r.tokens()
        assert good.tokens() == direct(kernel_lm, [1, 2], SamplingOptions(max_new_tokens=5))
    finally:
        model.finalize()


def test_a_response_that_cannot_be_built_ends_its_stream_with_the_reason(monkeypatch, kernel_lm, tmp_path):
    model = load_model(monkeypatch, kernel_lm, tmp_path)
    stream_class = type(model).initialize.__globals__["Stream"]
    real = stream_class.output

    def output(self, new, upto):
        if self.prompt == [9, 9] and upto == 2:
            raise ValueError("boom")
        return real(self, new, upto)

    monkeypatch.setattr(stream_class, "output", output)
    try:
        bad = FakeRequest(input_ids=np.array([9, 9], np.int32), max_tokens=np.int32(6), stream=True)
        good = FakeRequest(input_ids=np.array([1, 2], np.int32), max_tokens=np.int32(6), stream=True)
        model.execute([bad, good])
        assert good.tokens() == direct(kernel_lm, [1, 2], SamplingOptions(max_new_tokens=6))
        assert bad.sender.done.wait(10)
        assert [r.error.message() for r in bad.sender.responses if r.error is not None] == [
            "could not build the response: ValueError: boom"]
        assert len(bad.sender.responses) == 2  # the first token, then the error (final); nothing after it
    finally:
        model.finalize()


def test_a_cancelled_stream_ends_and_frees_its_state(monkeypatch, kernel_lm, tmp_path):
    model = load_model(monkeypatch, kernel_lm, tmp_path)
    try:
        r = FakeRequest(input_ids=np.array([1, 2], np.int32), max_tokens=np.int32(60), stream=True)
        model.execute([r])
        r.cancelled = True
        assert r.sender.done.wait(10)
        last = r.sender.responses[-1]
        assert "cancelled" in last.error.message() and last.error.code == FakeError.CANCELLED
        assert model.scheduler.active == []
    finally:
        model.finalize()


def test_deploy_python_backend_writes_the_decoupled_repository(kernel_lm, tmp_path, capsys):
    from flurka_export.cli.main import main
    from flurka_export.serve.generate_repository import generate_model_files

    assert main(["deploy", "triton", str(kernel_lm), "-o", str(tmp_path / "repo"), "--name", "lm",
                 "--backend", "python"]) == 0
    config = (tmp_path / "repo" / "lm" / "config.pbtxt").read_text()
    assert "decoupled: true" in config and "max_batch_size: 0" in config and '"text_input"' in config
    for name, text in generate_model_files().items():  # model.py and the decoders it loads from beside it
        assert (tmp_path / "repo" / "lm" / "1" / name).read_text() == text


def test_without_string_fields_no_string_is_declared(kernel_lm):
    from flurka_export.serve.repository import model_facts

    on = generate_config_pbtxt("m", model_facts(kernel_lm), max_streams=2, instances=1, threads=1)
    off = generate_config_pbtxt("m", model_facts(kernel_lm), max_streams=2, instances=1, threads=1,
                                string_fields=False)
    assert on.count("TYPE_STRING") == 3 and "text_output" in on
    assert "TYPE_STRING" not in off and "text_input" not in off and "sampling_parameters" not in off
    assert 'key: "string_fields"\n  value: { string_value: "0" }' in off
