"""Bad `bench` arguments fail at once: exit 1, one line on stderr naming the problem, no traceback, no file."""

import subprocess
import sys
import tempfile

import pytest

from flurka_export.bench import run as bench_run
from flurka_export.bench.settings import BenchSettings
from flurka_export.cli import main
from flurka_export.utils import check_output_file

CLI = [sys.executable, "-c", "import sys; from flurka_export.cli.main import main; sys.exit(main(sys.argv[1:]))"]
SMALL = ["--kinds", "softmax", "--seq-lens", "16", "--layers", "1", "--hidden", "32", "--heads", "2",
         "--low-rank", "8", "--no-progress"]


def sys_is_writable():
    try:
        tempfile.TemporaryFile(dir="/sys").close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("case", ["iters0", "json-sys", "json-dir", "plot-under-file"])
def test_cli_fails_before_running_in_one_line(case, tmp_path):
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_file").write_text("keep")
    args, message = {
        "iters0": (["--iters", "0"], "argument --iters: must be an integer >= 1, not 0"),
        "json-sys": (["--json", "/sys/x.json"], "cannot write /sys/x.json: /sys is not writable"),
        "json-dir": (["--json", "a_dir"], "'a_dir' is a directory; the --json file must be a file path"),
        "plot-under-file": (["--plot", "a_file/p.png"], "a_file is a file, not a directory"),
    }[case]
    if case == "json-sys" and sys_is_writable():
        pytest.skip("/sys is writable here")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = subprocess.run([*CLI, "bench", *SMALL, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == before and (tmp_path / "a_file").read_text() == "keep"


@pytest.fixture
def no_work(monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("the benchmark started before its arguments were checked")
    monkeypatch.setattr(bench_run, "prepare", started)
    monkeypatch.setattr(bench_run, "_run_subprocess", started)


@pytest.mark.parametrize("args,message", [
    (["--iters", "-2"], "argument --iters: must be an integer >= 1, not -2"),
    (["--warmup", "-1"], "argument --warmup: must be an integer >= 0, not -1"),
    (["--threads", "0"], "argument --threads: must be an integer >= 1, not 0"),
    (["--batch", "0"], "argument --batch: must be an integer >= 1, not 0"),
    (["--layers", "0"], "argument --layers: must be an integer >= 1"),
    (["--num-features", "0"], "argument --num-features: must be an integer >= 1"),
    (["--seq-lens", "0,16"], "--seq-lens must be positive integers"),
    (["--kinds", ","], "--kinds is empty"),
    (["--kinds", "softmax,nope"], "unknown attention kind 'nope'"),
    (["--runtimes", "tvm"], "unknown runtime 'tvm'"),
    (["--hidden", "33"], "bench model: --hidden=33 is not divisible by --heads=2"),
    (["--seq-lens", "4"], "bench model: --low-rank=8 exceeds max(--seq-lens)=4"),
    (["--json", "."], "is a directory"),
])
def test_bad_values_one_line_before_any_work(args, message, no_work, capsys):
    try:
        code = main(["bench", *SMALL, *args])
    except SystemExit as e:  # flags checked while parsing: argparse exits 1 from inside the parser
        code = e.code
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_zero_warmup_is_allowed_and_threads_default_is_filled_in():
    settings = BenchSettings(kinds=["softmax"], seq_lens=[16], warmup=0, low_rank=8).validate()
    assert settings.warmup == 0 and settings.threads >= 1


def test_output_check_creates_nothing(tmp_path):
    target = tmp_path / "new" / "deeper" / "r.json"
    assert check_output_file(target) == target
    assert list(tmp_path.iterdir()) == []
