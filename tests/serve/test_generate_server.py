"""`flurka-export serve` on a model that generates, on the real Triton server (loopback, bounded in time):
8 concurrent generate_stream clients x 32 tokens (server-sent events), every stream's tokens equal to a direct
greedy `generate` in ONNX Runtime; a bad request answered with its reason; a client that disconnects mid-stream;
the server serving on after both. One test function, one server."""

import http.client
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from flurka_export.generate import OrtDecoder, SamplingOptions, generate
from flurka_export.models.exported import ExportedModel
from tests.serve.test_server import serve_process

STREAMS, TOKENS = 8, 32


def post(url: str, path: str, body: dict, timeout: float = 30) -> tuple[int, list[dict]]:
    """POST a JSON body; the response's events (generate_stream) or its one JSON object (generate)."""
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        text = r.read().decode()
    finally:
        conn.close()
    events = [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]
    return r.status, events or [json.loads(text)]


def stream_ids(url: str, prompt: list[int]) -> list[int]:
    status, events = post(url, "/v2/models/flurka/generate_stream",
                          {"input_ids": prompt, "max_tokens": TOKENS, "stream": True})
    assert status == 200 and all("error" not in e for e in events), events[:2]
    assert len(events) == TOKENS  # one event per token
    return [e["output_ids"] for e in events]


def disconnect_mid_stream(url: str) -> None:
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/v2/models/flurka/generate_stream",
                 json.dumps({"input_ids": [1, 2], "max_tokens": 60, "stream": True}))
    r = conn.getresponse()
    assert r.readline().startswith(b"data: ")  # the first token came, then the client goes away
    conn.sock.close()
    conn.close()


@pytest.mark.slow
def test_generate_stream_under_load_equals_direct_generate(kernel_lm, tmp_path):
    config = ExportedModel.read(kernel_lm).config
    prompts = [[(7 * i + j) % 127 + 1 for j in range(1 + 3 * i)] for i in range(STREAMS)]
    want = generate(OrtDecoder(kernel_lm, config), prompts, SamplingOptions(max_new_tokens=TOKENS))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    with serve_process(kernel_lm, tmpdir) as (proc, banner, _):
        assert "generate_stream" in banner["text"] and "curl -sN" in banner["text"]
        url = banner["http"]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(STREAMS) as pool:
            got = list(pool.map(lambda p: stream_ids(url, p), prompts, timeout=60))
        wall = time.perf_counter() - t0
        assert got == want
        print(f"\ngenerate_stream: {STREAMS} concurrent streams x {TOKENS} tokens in {wall:.2f} s, "
              f"{STREAMS * TOKENS / wall:.0f} tokens/s, all equal to direct greedy generate")

        status, events = post(url, "/v2/models/flurka/generate", {"input_ids": [1, 999], "max_tokens": 4})
        assert status == 400 and re.search("token id 999 outside the vocabulary", events[0]["error"])
        from flurka_export.generate import BeamOptions, beam_search

        status, events = post(url, "/v2/models/flurka/generate", {"input_ids": [1, 2], "max_tokens": 6,
                                                                  "beam_width": 3})
        beams = beam_search(OrtDecoder(kernel_lm, config), [[1, 2]], BeamOptions(num_beams=3, max_new_tokens=6))
        assert status == 200 and events[0]["output_ids"] == beams[0], events
        from flurka_export.serve.generate_repository import stub_handles_strings

        if not stub_handles_strings():  # numpy 2 here: no string field is declared; the request gets one error
            status, events = post(url, "/v2/models/flurka/generate", {"text_input": "hello", "max_tokens": 4})
            assert status == 400 and "send input_ids" in events[0]["error"], events
        disconnect_mid_stream(url)
        assert stream_ids(url, prompts[0]) == want[0]  # still serving, and right
        status, events = post(url, "/v2/models/flurka/generate", {"input_ids": prompts[1], "max_tokens": TOKENS})
        assert status == 200 and events[0]["output_ids"] == want[1]


@pytest.mark.slow
def test_seq2seq_directory_streams_under_load_equal_direct_generate(tmp_path):
    """A FLuRKA seq2seq export directory on the real server: 8 concurrent sources x 32 tokens, each equal to
    greedy generate over the same files; an over-long source gets the encoder's limit."""
    from flurka_export import export_onnx
    from flurka_export.generate.seq2seq_decoder import OrtSeq2SeqDecoder
    from flurka_export.models import FlurkaConfig, build_model

    config = FlurkaConfig(task="seq2seq", num_layers=2, hidden_size=32, num_heads=2, max_seq_len=40,
                          max_target_len=TOKENS + 1, low_rank=8, vocab_size=64, seed=5)
    out = export_onnx(build_model(config), tmp_path / "s2s")
    sources = [[(5 * i + j) % 63 + 1 for j in range(1 + 4 * i)] for i in range(STREAMS)]
    want = generate(OrtSeq2SeqDecoder(out, config, 0), sources, SamplingOptions(max_new_tokens=TOKENS))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    with serve_process(out, tmpdir) as (proc, banner, _):
        url = banner["http"]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(STREAMS) as pool:
            got = list(pool.map(lambda p: stream_ids(url, p), sources, timeout=60))
        wall = time.perf_counter() - t0
        assert got == want
        print(f"\nseq2seq generate_stream: {STREAMS} concurrent sources x {TOKENS} tokens in {wall:.2f} s, "
              f"{STREAMS * TOKENS / wall:.0f} tokens/s, all equal to direct greedy generate")
        status, events = post(url, "/v2/models/flurka/generate", {"input_ids": list(range(1, 42)), "max_tokens": 4})
        assert status == 400 and "the source has 41 tokens > max_seq_len=40" in events[0]["error"]
        status, events = post(url, "/v2/models/flurka/generate", {"input_ids": sources[1], "max_tokens": TOKENS})
        assert status == 200 and events[0]["output_ids"] == want[1]
