"""model.py (the Python-backend model) without a server: Triton's `triton_python_backend_utils` is replaced by
a small stand-in with the same calls, so batching, padding, grouping by length and per-request errors are
checked against direct ONNX Runtime runs in milliseconds. The real server runs it in test_server.py."""

import types

import numpy as np
import pytest

from flurka_export.runtimes.ort_runner import make_session
from flurka_export.serve.repository import model_facts, python_config_pbtxt
from tests.serve.conftest import text_request

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")

from tests.serve.fake_triton import FakeResponse, FakeTensor, load_backend_model  # noqa: E402


class FakeRequest:
    def __init__(self, arrays, cancelled=False):
        self.tensors = {k: FakeTensor(k, np.ascontiguousarray(v)) for k, v in arrays.items()}
        self.cancelled = cancelled

    def is_cancelled(self):
        return self.cancelled


def fake_utils():
    mod = types.ModuleType("triton_python_backend_utils")
    mod.Tensor = FakeTensor
    mod.InferenceResponse = FakeResponse
    mod.TritonError = lambda message: types.SimpleNamespace(message=lambda: message)
    mod.get_input_tensor_by_name = lambda request, name: request.tensors.get(name)
    return mod


def load_model(monkeypatch, onnx_path, tmp_path):
    """model.py initialised as Triton would: model_config is the JSON of config.pbtxt."""
    from flurka_export.deploy.triton import onnx_io

    inputs, outputs, _ = onnx_io(onnx_path)
    text = python_config_pbtxt("m", inputs, outputs, model_facts(onnx_path), max_batch=8, max_queue_delay_us=100,
                               instances=1, threads=1)
    model = load_backend_model(monkeypatch, fake_utils(), "triton_model.py", text, onnx_path, tmp_path)
    calls = []
    real_run = model.session.run
    model.session.run = lambda names, feeds: calls.append(next(iter(feeds.values())).shape) or real_run(names, feeds)
    return model, calls


def direct(onnx_path, arrays):
    return make_session(onnx_path, ["CPUExecutionProvider"], threads=1).run(["logits"], arrays)[0]


REQUESTS = [(1, 5, 0), (2, 17, 3), (1, 9, 0), (1, 17, 0), (2, 5, 2)]  # (batch, N, trailing padding in row 0)


def test_lengths_padded_into_one_call_match_direct_runs(monkeypatch, flurka_mlm, tmp_path):
    model, calls = load_model(monkeypatch, flurka_mlm, tmp_path)
    rng = np.random.default_rng(0)
    arrays = [text_request(rng, *r) for r in REQUESTS]
    responses = model.execute([FakeRequest(a) for a in arrays])
    assert calls == [(7, 17)]  # one ONNX Runtime call: 7 rows padded to the longest, 17
    for a, r in zip(arrays, responses, strict=True):
        assert r.error is None
        got, want = r.outputs["logits"], direct(flurka_mlm, a)
        assert got.shape == want.shape == (*a["input_ids"].shape, 128)  # per-token output unpadded
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_kernel_kinds_run_each_length_on_its_own(monkeypatch, kernel_mlm, tmp_path):
    assert not model_facts(kernel_mlm).pad_across_lengths
    model, calls = load_model(monkeypatch, kernel_mlm, tmp_path)
    rng = np.random.default_rng(1)
    arrays = [text_request(rng, *r) for r in REQUESTS]
    responses = model.execute([FakeRequest(a) for a in arrays])
    assert sorted(calls) == [(1, 9), (3, 5), (3, 17)]  # equal lengths share a call, none is padded
    for a, r in zip(arrays, responses, strict=True):
        np.testing.assert_allclose(r.outputs["logits"], direct(kernel_mlm, a), atol=1e-5, rtol=0)


def bad_requests(rng):
    good = text_request(rng, 1, 8)
    return {
        "sequence length 65 exceeds this model's max_seq_len=64": text_request(rng, 1, 65),
        "input_ids must lie in [0, 128)": {**good, "input_ids": np.full((1, 8), 128, np.int64)},
        "attention_mask has shape [1, 7] but input_ids has [1, 8]": {**good, "attention_mask": np.ones((1, 7), np.int64)},
        "attention_mask must hold only 0 (padding) and 1": {**good, "attention_mask": np.full((1, 8), 2, np.int64)},
        "missing input attention_mask": {"input_ids": good["input_ids"]},
        "input_ids has sequence length 0": text_request(rng, 1, 0),
    }


def test_bad_requests_get_their_own_error_and_the_rest_are_served(monkeypatch, flurka_mlm, tmp_path):
    model, calls = load_model(monkeypatch, flurka_mlm, tmp_path)
    rng = np.random.default_rng(2)
    bad = bad_requests(rng)
    good = [text_request(rng, 1, 6), text_request(rng, 1, 11)]
    requests = [FakeRequest(good[0]), *(FakeRequest(a) for a in bad.values()), FakeRequest(good[1]),
                FakeRequest(good[0], cancelled=True)]
    responses = model.execute(requests)
    for expected, r in zip(bad, responses[1:-2], strict=True):
        assert r.error is not None and expected in r.error.message(), (expected, r.error.message())
    assert "cancelled" in responses[-1].error.message()
    for a, r in zip(good, (responses[0], responses[-2]), strict=True):
        assert r.error is None
        np.testing.assert_allclose(r.outputs["logits"], direct(flurka_mlm, a), atol=1e-5, rtol=0)
    assert calls == [(2, 11)]


def test_image_requests_are_concatenated(monkeypatch, image_model, tmp_path):
    model, _ = load_model(monkeypatch, image_model, tmp_path)
    rng = np.random.default_rng(4)
    arrays = [{"pixel_values": rng.standard_normal((b, 3, 16, 16)).astype(np.float32)} for b in (1, 3, 2)]
    responses = model.execute([FakeRequest(a) for a in arrays])
    session = make_session(image_model, ["CPUExecutionProvider"], threads=1)
    for a, r in zip(arrays, responses, strict=True):
        np.testing.assert_allclose(r.outputs["logits"], session.run(["logits"], a)[0], atol=1e-5, rtol=0)


def test_runtime_failure_becomes_an_error_response(monkeypatch, flurka_mlm, tmp_path):
    model, _ = load_model(monkeypatch, flurka_mlm, tmp_path)

    def boom(names, feeds):
        raise RuntimeError("out of memory")

    model.session.run = boom
    responses = model.execute([FakeRequest(text_request(np.random.default_rng(3), 1, 4))])
    assert "ONNX Runtime failed: RuntimeError: out of memory" in responses[0].error.message()
