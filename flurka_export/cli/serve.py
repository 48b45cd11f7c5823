"""`flurka-export serve MODEL.onnx|CKPT`: a Triton Inference Server with dynamic batching, until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..utils import temporary_directory
from .common import add_command, non_negative_int, port, positive_float, positive_int
from .main import CommandError

if TYPE_CHECKING:
    from ..serve import Served


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT: leave the serving block, which stops the server."""


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        for s in (signal.SIGTERM, signal.SIGINT):  # a second signal must not interrupt the clean stop
            signal.signal(s, signal.SIG_IGN)
        raise _Stop(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _onnx_for(model: Path) -> Iterator[Path]:
    """The ONNX file to serve: MODEL itself, or a checkpoint exported into a temporary directory."""
    if model.is_file() and model.suffix == ".onnx":
        yield model
        return
    if model.is_dir() and not (model / "config.json").is_file() and any(model.glob("*.onnx")):
        yield model  # an export directory (seq2seq): serve/repository.py names its files
        return
    if not (model.is_dir() and (model / "config.json").is_file()):
        raise CommandError(f"{model} is neither an ONNX file (.onnx), an export directory nor a checkpoint directory "
                           "(config.json)")
    from ..export.onnx_export import export_onnx
    from ..models import load_config

    config = load_config(model)
    with temporary_directory("flurka-serve-export-") as tmp:
        print(f"exporting {model} to ONNX ...", flush=True)
        yield export_onnx(model, Path(tmp) / ("model" if config.spec.export_parts(config) else "model.onnx"))


def _banner(served: Served) -> str:
    from ..serve.client import curl_command, example_inputs

    ep, name, facts = served.endpoints, served.name, served.facts
    what = f"{facts.attention}, max_seq_len {facts.max_seq_len}" if facts.attention else "no flurka metadata"
    if facts.generation:
        return _generate_banner(served, what)
    batching = ("requests of any length are padded into one batch" if facts.pad_across_lengths
                else "only requests of equal length are batched together")
    lines = [f"serving model '{name}' ({what}) on Triton Inference Server; {batching}",
             f"  HTTP    http://{ep.http_url}/v2/models/{name}  (ready: http://{ep.http_url}/v2/health/ready)",
             f"  gRPC    {ep.grpc_url}",
             f"  metrics http://{ep.host}:{ep.metrics_port}/metrics"]
    example = example_inputs(served.input_names, token_input=facts.token_input, mask_input=facts.mask_input)
    if example:
        lines += ["try:", "  " + curl_command(ep.http_url, name, example)]
    lines.append("Ctrl-C or SIGTERM stops the server.")
    return "\n".join(lines)


def _generate_banner(served: Served, what: str) -> str:
    from ..serve.client import generate_curl

    ep, name = served.endpoints, served.name
    lines = [f"serving model '{name}' ({what}) on Triton Inference Server: token by token, the streams in flight "
             "batched together (continuous batching)",
             f"  HTTP    http://{ep.http_url}/v2/models/{name}  (ready: http://{ep.http_url}/v2/health/ready)",
             f"  generate         POST http://{ep.http_url}/v2/models/{name}/generate",
             f"  generate_stream  POST http://{ep.http_url}/v2/models/{name}/generate_stream  (server-sent events)",
             f"  gRPC    {ep.grpc_url}  (decoupled: stream_infer)",
             f"  metrics http://{ep.host}:{ep.metrics_port}/metrics",
             "try:", "  " + generate_curl(ep.http_url, name, served.facts, stream=True),
             "Ctrl-C or SIGTERM stops the server."]
    from ..serve.generate_repository import stub_handles_strings

    if not stub_handles_strings():
        lines.insert(-2, "note: token ids in and out (input_ids / output_ids): this Python's numpy 2 cannot pass "
                         "string tensors through the server's Python stub, so text_input, text_output and "
                         "sampling_parameters are off (pip install 'flurka-export[serve]' brings numpy 1.26)")
    return "\n".join(lines)


def run_serve(args: argparse.Namespace) -> int:
    from ..serve import Endpoints, ServeOptions, ServerError, serving

    endpoints = Endpoints(args.host, args.port_http, args.port_grpc, args.port_metrics)  # checks the ports first
    threads = args.threads if args.threads is not None else max(1, (os.cpu_count() or 1) // args.instances)
    options = ServeOptions(name=args.name, max_batch=args.max_batch, max_queue_delay_us=args.max_queue_delay_us,
                           instances=args.instances, threads=threads, startup_timeout_s=args.startup_timeout)
    try:
        with _stop_on_signals(), _onnx_for(Path(args.model)) as onnx_path, \
                serving(onnx_path, endpoints, options) as served:
            print(_banner(served), flush=True)
            code = served.server.proc.wait()  # returns only if the server stops on its own
            raise CommandError(f"tritonserver exited unexpectedly (code {code}){served.server.log_excerpt()}")
    except _Stop as stop:
        print(f"{stop}: server stopped", file=sys.stderr, flush=True)
        return 0
    except ServerError as e:
        raise CommandError(str(e)) from None


def register(sub: object) -> None:
    p = add_command(sub, "serve", run_serve,
                    "serve a model on a Triton Inference Server (HTTP, gRPC, metrics) with dynamic batching",
                    description="Serve MODEL.onnx (or a checkpoint, exported first) on the Triton Inference Server "
                                "of the nvidia-pytriton wheel: Python backend running ONNX Runtime, dynamic "
                                "batching, HTTP/gRPC/metrics on --host. Stops cleanly on Ctrl-C or SIGTERM.")
    p.add_argument("model", help="model.onnx exported by flurka-export, an export directory (seq2seq), or a "
                                 "checkpoint directory")
    p.add_argument("--name", default="flurka", help="model name in the URLs (default flurka)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port-http", type=port, default=8000, help="HTTP port (default 8000; 0 = a free port)")
    p.add_argument("--port-grpc", type=port, default=8001, help="gRPC port (default 8001; 0 = a free port)")
    p.add_argument("--port-metrics", type=port, default=8002, help="metrics port (default 8002; 0 = a free port)")
    p.add_argument("--max-batch", type=positive_int, default=8, help="largest batch the dynamic batcher forms (default 8)")
    p.add_argument("--max-queue-delay-us", type=non_negative_int, default=2000,
                   help="how long the batcher waits to fill a batch, in microseconds (default 2000)")
    p.add_argument("--instances", type=positive_int, default=1, help="model instances, each its own process (default 1)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="ONNX Runtime threads per instance (default: CPU cores / instances)")
    p.add_argument("--startup-timeout", type=positive_float, default=120.0, help="seconds to wait for readiness (default 120)")
