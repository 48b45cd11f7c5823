"""Run tritonserver as a supervised child process: start, wait until ready, stop cleanly.

The server runs in its own process group (with its Python backend stubs), so a stop can reach every process
it started; it also gets SIGTERM if this process dies (PR_SET_PDEATHSIG), so it is never orphaned. Its shared
memory regions carry a prefix of ours, so regions left by a forced stop are found and removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .distribution import TritonDistribution, prepare_backends, server_env

SHM_DIR = Path("/dev/shm")


class ServerError(RuntimeError):
    """The server did not start or stopped on its own: printed as one message by the CLI."""


@dataclasses.dataclass
class Endpoints:
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002

    def __post_init__(self) -> None:
        """Ports 0 to 65535 (0 = a free one), and no two the same: checked before anything is read or started
        (a port out of range used to reach socket.bind as an OverflowError)."""
        seen: dict[int, str] = {}
        for flag, port in self.flags().items():
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ValueError(f"{flag} {port!r} is not a port: it must be 0 to 65535 (0 = a free port)")
            if port and port in seen:
                raise ValueError(f"{seen[port]} and {flag} are both {port}: the three ports must differ")
            seen[port] = flag

    def flags(self) -> dict[str, int]:
        return {"--port-http": self.http_port, "--port-grpc": self.grpc_port, "--port-metrics": self.metrics_port}

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def resolve_ports(ep: Endpoints) -> Endpoints:
    """Port 0 becomes a free port; a port in use is an error that names its flag."""
    ports = {}
    for flag, port in ep.flags().items():
        if port == 0:
            port = free_port(ep.host)
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
                try:
                    s.bind((ep.host, port))
                except OSError as e:
                    raise ServerError(f"cannot listen on {ep.host}:{port} ({flag}): {e.strerror}; "
                                      f"pick another port, or 0 for a free one") from None
        ports[flag] = port
    return Endpoints(ep.host, ports["--port-http"], ports["--port-grpc"], ports["--port-metrics"])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class TritonServer:
    """tritonserver over `repository`, with its backends, log and shared memory under `workspace`."""

    def __init__(self, dist: TritonDistribution, repository: Path, workspace: Path, endpoints: Endpoints,
                 *, exit_timeout_s: int = 3) -> None:
        self.dist, self.repository, self.workspace, self.endpoints = dist, repository, workspace, endpoints
        self.exit_timeout_s = exit_timeout_s
        self.shm_prefix = f"flurka_serve_{os.getpid()}_{id(self) & 0xFFFFFF:x}_"
        self.log_path = workspace / "tritonserver.log"
        self.proc: subprocess.Popen | None = None

    def command(self, backends: Path) -> list[str]:
        ep = self.endpoints
        return [str(self.dist.binary), f"--model-repository={self.repository}", f"--backend-directory={backends}",
                f"--http-address={ep.host}", f"--http-port={ep.http_port}",
                f"--grpc-address={ep.host}", f"--grpc-port={ep.grpc_port}",
                f"--metrics-address={ep.host}", f"--metrics-port={ep.metrics_port}",
                "--allow-metrics=true", "--allow-gpu-metrics=false", "--strict-readiness=true",
                "--disable-auto-complete-config", f"--exit-timeout-secs={self.exit_timeout_s}",
                f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}"]

    def start(self) -> None:
        backends = prepare_backends(self.dist, self.workspace)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(backends), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=server_env(self.dist),
                                         start_new_session=True, preexec_fn=_die_with_parent)

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.endpoints.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise ServerError(f"tritonserver exited during start-up (code {self.proc and self.proc.returncode})"
                                  f"{self.log_excerpt()}")
            if self.is_ready():
                return
            time.sleep(0.2)
        raise ServerError(f"tritonserver was not ready after {timeout_s:.0f} s{self.log_excerpt()}")

    def log_excerpt(self, lines: int = 12) -> str:
        """The server's error lines (or its last lines), for an error message."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        unavailable = [t.strip(" |") for t in text if "UNAVAILABLE:" in t]  # Triton's model table: the reason
        noise = ("NVML", "DCGM", "CudaDriverHelper")  # said on every machine without a GPU
        picked = unavailable or [t for t in text if (t.startswith("E") or "Error" in t)
                                 and not any(n in t for n in noise)] or text
        return "; server log:\n  " + "\n  ".join(picked[-lines:]) if picked else ""

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM (the server finishes in-flight requests, unloads the model, stops its stubs), then SIGKILL
        whatever is left of its process group after `grace_s`; removes shared memory it left. Returns its code."""
        if self.proc is None:
            return None
        pgid = self.proc.pid  # the group leader (start_new_session)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 1.0
        while _group_alive(pgid) and time.monotonic() < deadline:  # stubs exit right after the server
            time.sleep(0.05)
        if _group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        for leftover in SHM_DIR.glob(f"{self.shm_prefix}*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        return self.proc.returncode


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
