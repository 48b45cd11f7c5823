"""`flurka-export serve` on the real Triton server, loopback only, bounded in time (it stops by itself):

8 concurrent clients x 50 requests (mixed lengths, padding and batch sizes; half over HTTP, half over gRPC),
every response equal to a direct ONNX Runtime run within 1e-5 and no error; bad requests answered with their
reason while the server keeps serving; requests killed mid-flight; then SIGTERM: exit within 10 s, no process
left, no file left. One test function, so that pytest-xdist cannot split the server's life over workers.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from flurka_export.runtimes.ort_runner import make_session
from flurka_export.serve.client import infer, make_client, model_metrics
from tests.serve.conftest import text_request

pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http,grpc]'")
pytest.importorskip("tritonclient.grpc", reason="pip install 'tritonclient[http,grpc]'")
try:
    from flurka_export.serve.distribution import find_distribution

    find_distribution()
except ImportError as e:  # a clear reason, not a failure: the server binary is an optional extra
    pytest.skip(f"no Triton server: {e}", allow_module_level=True)

CLIENTS, REQUESTS_PER_CLIENT = 8, 50
START_TIMEOUT_S, LOAD_TIMEOUT_S = 90, 60


def descendants(pid: int) -> set[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p}
        todo += list(kids - found)
        found |= kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextlib.contextmanager
def serve_process(onnx_path, tmpdir: Path):
    """Start `flurka-export serve` on free ports; whatever happens, nothing it started outlives the block."""
    env = dict(os.environ, TMPDIR=str(tmpdir))
    cmd = [sys.executable, "-m", "flurka_export.cli.main", "serve", str(onnx_path), "--port-http", "0",
           "--port-grpc", "0", "--port-metrics", "0", "--threads", "1", "--max-batch", "8"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    started: set[int] = set()
    try:
        banner = read_banner(proc)
        started = descendants(proc.pid)
        yield proc, banner, started
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in started | descendants(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for region in Path("/dev/shm").glob(f"flurka_serve_{proc.pid}_*"):  # left only by a killed server
            region.unlink(missing_ok=True)


def read_banner(proc) -> dict[str, str]:
    lines: list[str] = []
    done = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    if not done.wait(START_TIMEOUT_S) or not lines or not lines[-1].startswith("Ctrl-C"):
        proc.kill()
        raise AssertionError(f"serve did not start: {''.join(lines)}{proc.stderr.read()}")
    text = "".join(lines)
    return {"http": re.search(r"HTTP +http://([\d.]+:\d+)/", text)[1], "grpc": re.search(r"gRPC +([\d.]+:\d+)", text)[1],
            "metrics": re.search(r"metrics (http://\S+)", text)[1], "text": text}


def client_work(k: int, banner, requests):
    protocol = "http" if k % 2 == 0 else "grpc"
    client = make_client(protocol, banner[protocol], timeout_s=30)
    out = []
    for arrays in requests:
        t0 = time.perf_counter()
        logits = infer(client, protocol, "flurka", arrays, ["logits"], timeout_s=30)["logits"]
        out.append((time.perf_counter() - t0, logits))
    client.close()
    return out


def run_load(banner, onnx_path):
    rng = np.random.default_rng(0)
    plan = [[text_request(rng, int(rng.integers(1, 3)), int(rng.integers(2, 65)), pad=int(rng.integers(0, 2)) * 2)
             for _ in range(REQUESTS_PER_CLIENT)] for _ in range(CLIENTS)]
    t0 = time.perf_counter()
    pool = ThreadPoolExecutor(CLIENTS)
    try:
        futures = [pool.submit(client_work, k, banner, plan[k]) for k in range(CLIENTS)]
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        results = [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]
    finally:  # on a timeout, do not wait here: the server is killed next and the clients then fail at once
        pool.shutdown(wait=False, cancel_futures=True)
    wall = time.perf_counter() - t0
    session = make_session(onnx_path, ["CPUExecutionProvider"], threads=1)
    worst = 0.0
    for requests, answers in zip(plan, results, strict=True):
        for arrays, (_, logits) in zip(requests, answers, strict=True):
            want = session.run(["logits"], arrays)[0]
            assert logits.shape == want.shape
            worst = max(worst, float(np.abs(logits - want).max()))
    latencies = np.array([t for answers in results for t, _ in answers]) * 1e3
    n = latencies.size
    print(f"\nserve load: {n} requests, {CLIENTS} clients, 0 errors, max |server - ORT| = {worst:.2e}, "
          f"p50 {np.percentile(latencies, 50):.1f} ms, p99 {np.percentile(latencies, 99):.1f} ms, "
          f"{n / wall:.0f} requests/s")
    assert worst <= 1e-5


def check_bad_requests_keep_serving(banner, onnx_path):
    from tritonclient.utils import InferenceServerException

    rng = np.random.default_rng(1)
    good = text_request(rng, 1, 10)
    bad = [({**good, "input_ids": good["input_ids"].astype(np.int32)}, "data-type is 'INT32'"),
           ({k: v[0, :5] for k, v in good.items()}, "unexpected shape"),
           (text_request(rng, 1, 65), "exceeds this model's max_seq_len=64"),
           ({**good, "input_ids": good["input_ids"] + 1000}, "input_ids must lie in [0, 128)"),
           ({"input_ids": good["input_ids"]}, "missing required input(s) ['attention_mask']")]
    want = make_session(onnx_path, ["CPUExecutionProvider"], threads=1).run(["logits"], good)[0]
    for protocol in ("http", "grpc"):
        client = make_client(protocol, banner[protocol], timeout_s=30)
        for arrays, message in bad:
            with pytest.raises(InferenceServerException, match=re.escape(message)):
                infer(client, protocol, "flurka", arrays, ["logits"])
            got = infer(client, protocol, "flurka", good, ["logits"])["logits"]  # still serving, still right
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        client.close()


def kill_requests_mid_flight(banner):
    """A gRPC request cancelled, an HTTP upload cut in half, a client process killed while it waits."""
    import tritonclient.grpc as grpcclient

    big = text_request(np.random.default_rng(2), 8, 64)
    client = grpcclient.InferenceServerClient(banner["grpc"])
    inputs = []
    for name, array in big.items():
        inputs.append(grpcclient.InferInput(name, list(array.shape), "INT64"))
        inputs[-1].set_data_from_numpy(array)
    client.async_infer("flurka", inputs, callback=lambda result, error: None).cancel()
    client.close()
    host, port = banner["http"].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST /v2/models/flurka/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                  b'{"inputs":[{"name":"input_ids","shape":[1,64],"datatype":"INT64","data":[1,2,')
    script = ("import numpy as np\nfrom flurka_export.serve.client import make_client, infer\n"
              f"c = make_client('http', '{banner['http']}')\n"
              "x = np.ones((8, 64), np.int64)\n"
              "while True: infer(c, 'http', 'flurka', {'input_ids': x, 'attention_mask': x}, ['logits'])\n")
    victim = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    victim.kill()
    victim.wait(timeout=10)
    return script


def busy_client(script):
    """A client that keeps the server busy (its connection errors at the server's stop are expected)."""
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_serve_under_load_bad_requests_kills_and_sigterm(flurka_mlm, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    with serve_process(flurka_mlm, tmpdir) as (proc, banner, started):
        assert "padded into one batch" in banner["text"] and "curl -s -X POST" in banner["text"]
        assert any(p.name.startswith("flurka-serve-") for p in tmpdir.iterdir())
        run_load(banner, flurka_mlm)
        counters = model_metrics(banner["metrics"], "flurka")
        assert counters["nv_inference_exec_count"] < counters["nv_inference_request_success"], "the dynamic batcher never put two requests into one batch"
        check_bad_requests_keep_serving(banner, flurka_mlm)
        script = kill_requests_mid_flight(banner)
        check_bad_requests_keep_serving(banner, flurka_mlm)  # healthy and right after the kills

        shm_prefix = f"flurka_serve_{proc.pid}_"
        assert any(p.name.startswith(shm_prefix) for p in Path("/dev/shm").iterdir())
        started |= descendants(proc.pid)
        assert len(started) >= 2  # tritonserver and its Python backend stub
        busy = busy_client(script)  # stop under load: in-flight requests get the server's exit timeout
        try:
            time.sleep(1.0)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            stop_s = time.monotonic() - t0
        finally:
            busy.kill()
            busy.wait(timeout=10)
        print(f"SIGTERM under load: serve exited in {stop_s:.1f} s")
        assert stop_s < 10
        assert "SIGTERM: server stopped" in proc.stderr.read()
        deadline = time.monotonic() + 3  # the stubs are re-parented and reaped by init
        while any(alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in started if alive(p)], "processes left behind"
        # `import onnxruntime` keeps a launch record, TMPDIR/.ses, in any process (already in the system temp directory): not ours
        assert [p.name for p in tmpdir.iterdir() if p.name != ".ses"] == [], "files left behind"
        assert not [p for p in Path("/dev/shm").iterdir() if p.name.startswith(shm_prefix)], "shared memory left"


@pytest.mark.slow
def test_a_model_that_fails_to_load_is_a_clear_error(flurka_mlm, tmp_path):
    from flurka_export.serve.process import Endpoints, ServerError, TritonServer, resolve_ports
    from flurka_export.serve.repository import write_python_repository

    version = write_python_repository(flurka_mlm, tmp_path / "repo", "broken", link_model=True)
    (version / "model.py").write_text("raise ImportError('no module named onnxruntime_for_this_test')\n")
    server = TritonServer(find_distribution(), tmp_path / "repo", tmp_path, resolve_ports(Endpoints(http_port=0,
                          grpc_port=0, metrics_port=0)))
    server.start()
    try:
        with pytest.raises(ServerError, match="exited during start-up") as e:
            server.wait_ready(START_TIMEOUT_S)
        assert "onnxruntime_for_this_test" in str(e.value) and "NVML" not in str(e.value)
    finally:
        server.stop()
    assert not [p for p in Path("/dev/shm").iterdir() if p.name.startswith(server.shm_prefix)]
