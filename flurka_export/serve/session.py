"""`serving(model.onnx)`: a workspace with a Python-backend repository, a Triton server on it, and a clean
stop that leaves nothing behind (no process, no file, no shared memory)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from ..utils import temporary_directory
from .distribution import find_distribution
from .generate_repository import stub_handles_strings
from .process import Endpoints, TritonServer, resolve_ports
from .repository import ModelFacts, model_facts, served_files, write_python_repository


@dataclasses.dataclass
class ServeOptions:
    name: str = "flurka"
    max_batch: int = 8
    max_queue_delay_us: int = 2000
    instances: int = 1
    threads: int = 0  # ONNX Runtime intra-op threads per instance; 0 = its default
    startup_timeout_s: float = 120.0


@dataclasses.dataclass
class Served:
    server: TritonServer
    endpoints: Endpoints
    name: str
    facts: ModelFacts
    input_names: list[str]
    output_names: list[str]
    workspace: Path


@contextlib.contextmanager
def serving(onnx_path: str | Path, endpoints: Endpoints, options: ServeOptions,
            workspace_parent: str | Path | None = None) -> Iterator[Served]:
    """Serve `onnx_path` until the block ends (also on an exception or KeyboardInterrupt)."""
    from ..deploy.triton import onnx_io
    from ..models.exported import ExportedModel

    dist = find_distribution()  # before anything is written: a missing server is a one-line error
    exported = ExportedModel.read(served_files(onnx_path)[0])  # read once for the I/O names and the metadata
    inputs, outputs, _ = onnx_io(exported.proto)
    facts = model_facts(exported)
    endpoints = resolve_ports(endpoints)
    with temporary_directory("flurka-serve-", workspace_parent) as workspace:
        server = None
        try:
            repo = workspace / "models"
            write_python_repository(onnx_path, repo, options.name, version=1, max_batch=options.max_batch,
                                    max_queue_delay_us=options.max_queue_delay_us, instances=options.instances,
                                    threads=options.threads, link_model=True, string_fields=stub_handles_strings())
            server = TritonServer(dist, repo, workspace, endpoints)
            server.start()
            server.wait_ready(options.startup_timeout_s)
            yield Served(server, endpoints, options.name, facts, [t.name for t in inputs],
                         [t.name for t in outputs], workspace)
        finally:
            if server is not None:
                server.stop()
