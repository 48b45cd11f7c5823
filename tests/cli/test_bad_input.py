"""Every bad input a user was seen to give: exit 1 (130 for SIGINT, 143 for SIGTERM), exactly one line on
stderr naming the problem, no traceback, and no new or changed files except the ones the command owns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flurka_export import export_onnx
from flurka_export.models import build_model, save_pretrained
from tests.helpers import tiny_config

CLI = [sys.executable, "-m", "flurka_export"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    save_pretrained(build_model(tiny_config(attention="flurka-elu")), root / "ckpt")
    export_onnx(root / "ckpt", root / "m.onnx")
    (root / "full").mkdir()
    (root / "full" / "precious.txt").write_text("do not lose me")
    (root / "afile").write_text("a file, not a directory")
    bad = root / "badcfg"
    save_pretrained(build_model(tiny_config()), bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["eps"] = "small"
    (bad / "config.json").write_text(json.dumps(cfg))
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def run_cli(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600, **kw)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str, code: int = 1) -> None:
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert len(err) == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in err[0], err[0]


CASES = [
    # (id, argv, words the one line must contain)
    ("new-into-nonempty-dir", ["new", "-o", "full"], ["full already exists and is not empty", "--overwrite"]),
    ("new-over-checkpoint", ["new", "-o", "ckpt"], ["ckpt already exists", "--overwrite"]),
    ("new-into-cwd", ["new", "-o", "."], ["."]),
    ("convert-into-nonempty-dir", ["convert-attention", "ckpt", "--to", "flurka-relu", "-o", "full"],
     ["full already exists and is not empty"]),
    ("export-unwritable", ["export", "ckpt", "-o", "/proc/m.onnx"], ["cannot write /proc/m.onnx"]),
    ("export-to-directory", ["export", "ckpt", "-o", "full"], ["'full' is a directory"]),
    ("export-parent-is-file", ["export", "ckpt", "-o", "afile/m.onnx"], ["afile is a file, not a directory"]),
    ("export-over-existing", ["export", "ckpt", "-o", "m.onnx"], ["m.onnx already exists", "--overwrite"]),
    ("export-bad-opset", ["export", "ckpt", "-o", "x.onnx", "--opset", "99"], ["opset 99", "allowed: 18 to"]),
    ("export-config-file", ["export", "ckpt/config.json", "-o", "x.onnx"], ["is a file", "checkpoint directory"]),
    ("export-bad-config-type", ["export", "badcfg", "-o", "x.onnx"], ["eps", "small"]),
    ("export-bad-max-seq-len", ["export", "ckpt", "-o", "x.onnx", "--max-seq-len", "100000"], ["max_seq_len"]),
    ("inspect-not-onnx", ["inspect", "ckpt/config.json"], ["not a valid ONNX model"]),
    ("verify-report-unwritable", ["verify", "ckpt", "m.onnx", "--report", "/proc/r.json"], ["cannot write /proc/r.json"]),
    ("verify-negative-atol", ["verify", "ckpt", "m.onnx", "--atol", "-1"], ["--atol: must be a number >= 0"]),
    ("verify-unknown-runtime", ["verify", "ckpt", "m.onnx", "--runtimes", "torch,tvm"], ["unknown runtime 'tvm'"]),
    ("verify-too-long-shape", ["verify", "ckpt", "m.onnx", "--shapes", "1x129"], ["max_seq_len=128"]),
    ("demo-bad-dtype", ["demo", "-o", "demo-out", "--dtype", "fp8"], ["--dtype", "'fp8'", "fp32", "fp16", "bf16"]),
    ("bench-zero-iters", ["bench", "--iters", "0"], ["iters"]),
    ("fuse-unwritable", ["fuse", "m.onnx", "-o", "/proc/f.onnx"], ["cannot write /proc/f.onnx"]),
    ("deploy-unknown-flag", ["deploy", "triton", "m.onnx", "-o", "repo", "--name", "m", "--bogus"], ["--bogus"]),
]


@pytest.mark.parametrize("argv,needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_touches_nothing(work, argv, needles):
    before = snapshot(work)
    proc = run_cli(argv, work)
    assert_one_line_error(proc, *needles)
    assert snapshot(work) == before
    assert "/.m.onnx." not in proc.stderr and ".tmp" not in proc.stderr  # never the internal temp name


def test_broken_pipe_exits_quietly(work):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([*CLI, "inspect", "m.onnx"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_save_leaves_nothing(tmp_path, sig, code):
    """Stop `export` the moment its temporary file appears: no partial or hidden file may remain."""
    save_pretrained(build_model(tiny_config(num_layers=4, hidden_size=256, num_heads=4, vocab_size=8192)),
                    tmp_path / "ckpt")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([*CLI, "export", "ckpt", "-o", "out/m.onnx"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if (tmp_path / "out").is_dir() and any((tmp_path / "out").iterdir()):
            break
        time.sleep(0.002)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # finished before the signal: then the file must be whole
        assert (tmp_path / "out" / "m.onnx").is_file()
        pytest.skip("export finished before the signal arrived")
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    leftovers = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not str(p).startswith(
        str(tmp_path / "ckpt")))
    assert leftovers == [], leftovers  # not even the out/ directory the command created


def test_files_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_pretrained(build_model(tiny_config()), tmp_path / "ckpt")
        export_onnx(tmp_path / "ckpt", tmp_path / "m.onnx")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in [tmp_path / "ckpt", *(tmp_path / "ckpt").iterdir(),
                                                          tmp_path / "m.onnx"]}
    assert modes == {"ckpt": 0o755, "config.json": 0o644, "model.safetensors": 0o644, "m.onnx": 0o644}


def test_overwrite_replaces_only_our_files(tmp_path, capsys):
    from flurka_export.cli.main import main

    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "notes.txt").write_text("mine")
    assert main(["new", "-o", str(tmp_path / "ckpt"), "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors", "notes.txt"]
    assert (tmp_path / "ckpt" / "notes.txt").read_text() == "mine"
