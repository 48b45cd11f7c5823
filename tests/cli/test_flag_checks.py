"""Flags that can be checked without reading anything are checked first, while the command line is parsed:
a bad value is one line naming the flag (exit code 1), never an 'internal error', and never a complaint about
a file the command did not need to read yet."""

from __future__ import annotations

import argparse

import pytest

from flurka_export.cli import main
from flurka_export.cli.common import DTYPE_NAMES, bounded_float, bounded_int, shape_list
from flurka_export.cli.main import build_parser

# Numeric flags still parsed with a bare int/float, each with the reason it is checked early enough anyway.
UNCHECKED_OK = {
    # FlurkaConfig fields of `new`: FlurkaConfig checks them all before anything is written, and nothing is read
    **{("new", f"--{name}"): "FlurkaConfig" for name in (
        "num-layers", "hidden-size", "num-heads", "low-rank", "max-seq-len", "num-features", "vocab-size",
        "num-labels", "intermediate-size", "image-size", "patch-size", "num-channels", "seed", "stabilizer", "eps",
        "nu")},
    ("export", "--opset"): "export_onnx checks the opset before it reads the checkpoint",
}


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[f"{prefix}{name}"] = sub
                out.update(_commands(sub, f"{prefix}{name} "))
    return out


def loose_flags(parser: argparse.ArgumentParser) -> list[str]:
    loose = []
    for name, sub in _commands(parser).items():
        for action in sub._actions:
            flag = max(action.option_strings, key=len, default=action.dest)
            if action.type in (int, float) and action.choices is None and (name, flag) not in UNCHECKED_OK:
                loose.append(f"{name} {flag}")
    return loose


def test_every_numeric_flag_has_a_checked_type():
    loose = loose_flags(build_parser())
    assert loose == [], f"give these a checked type= from cli/common.py (or choices): {loose}"


def test_the_scan_sees_a_bare_int_flag():
    parser = build_parser()
    _commands(parser)["deploy triton"].add_argument("--bogus", type=int)
    assert loose_flags(parser) == ["deploy triton --bogus"]


def test_dtype_names_match_the_exporter():
    from flurka_export.export.onnx_export import DTYPES

    assert DTYPE_NAMES == tuple(DTYPES)


CASES = [
    # (argv: every file named here is missing, the one line must contain each needle)
    (["serve", "m.onnx", "--port-http", "99999"], ["--port-http", "from 0 to 65535", "99999"]),
    (["serve", "m.onnx", "--port-grpc", "-1"], ["--port-grpc", "from 0 to 65535"]),
    (["serve", "m.onnx", "--port-http", "9000", "--port-metrics", "9000"],
     ["--port-http and --port-metrics are both 9000"]),
    (["serve", "m.onnx", "--max-batch", "0"], ["--max-batch", ">= 1", "not 0"]),
    (["serve", "m.onnx", "--startup-timeout", "0"], ["--startup-timeout", "> 0"]),
    (["serve", "m.onnx", "--max-queue-delay-us", "-5"], ["--max-queue-delay-us", ">= 0"]),
    (["import-flax", "garbage.msgpack", "-o", "ck", "--seq-len", "300"], ["--seq-len", "300", "128", "512"]),
    (["import-flax", "garbage.msgpack", "-o", "ck", "--tau", "0"], ["--tau", "> 0"]),
    (["export", "ck", "-o", "m.onnx", "--dtype", "fp64"], ["--dtype", "fp64"]),
    (["export", "ck", "-o", "m.onnx", "--attention-op", "bogus"], ["--attention-op", "bogus"]),
    (["export", "ck", "-o", "m.onnx", "--max-seq-len", "1"], ["--max-seq-len", ">= 2"]),
    (["export", "ck", "-o", "m.onnx", "--opset", "5"], ["opset 5", "allowed: 18 to"]),
    (["verify", "ck", "m.onnx", "--atol", "-1"], ["--atol", ">= 0"]),
    (["verify", "ck", "m.onnx", "--rtol", "nan"], ["--rtol", ">= 0"]),
    (["verify", "ck", "m.onnx", "--shapes", "3y4"], ["--shapes", "'3y4'"]),
    (["verify", "ck", "m.onnx", "--shapes", "0x5"], ["--shapes", "'0x5'"]),
    (["verify", "ck", "m.onnx", "--seed", "-1"], ["--seed", ">= 0"]),
    (["convert-attention", "ck", "--to", "flurka-elu", "-o", "ck2", "--low-rank", "0"], ["--low-rank", ">= 1"]),
    (["deploy", "triton", "m.onnx", "-o", "repo", "--name", "m", "--instances", "0"], ["--instances", ">= 1"]),
    (["deploy", "triton", "m.onnx", "-o", "repo", "--name", "m", "--version", "0"], ["--version", ">= 1"]),
    (["deploy", "triton", "m.onnx", "-o", "repo", "--name", "m", "--max-batch", "-1"], ["--max-batch", ">= 0"]),
    (["build-engine", "m.onnx", "-o", "m.plan", "--max-batch", "0"], ["--max-batch", ">= 1"]),
    (["build-kernels", "-o", "k", "--jobs", "0"], ["--jobs", ">= 1"]),
    (["build-plugin", "-o", "b", "--arch", "abc"], ["--arch", "integers"]),
    (["build-plugin", "-o", "b", "--jobs", "0"], ["--jobs", ">= 1"]),
    (["bench", "--batch", "0"], ["--batch", ">= 1"]),
    (["demo", "-o", "d", "--dtype", "fp8"], ["--dtype", "fp8"]),
]


@pytest.mark.parametrize("argv,needles", CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CASES])
def test_a_bad_flag_is_named_before_any_file_is_read(tmp_path, monkeypatch, capsys, argv, needles):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert "internal error" not in err[0] and "does not exist" not in err[0] and "neither" not in err[0], err[0]
    for needle in needles:
        assert needle in err[0], err[0]
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_validators():
    assert bounded_int(0, 65535)("65535") == 65535
    with pytest.raises(argparse.ArgumentTypeError, match="must be an integer from 0 to 65535, not 65536"):
        bounded_int(0, 65535)("65536")
    with pytest.raises(argparse.ArgumentTypeError, match="must be an integer >= 1, not 'x'"):
        bounded_int(1)("x")
    assert bounded_float(0.0)("0") == 0.0
    for bad in ("-0.1", "inf", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be a number >= 0"):
            bounded_float(0.0)(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="must be a number > 0, not 0"):
        bounded_float(0.0, positive=True)("0")
    assert shape_list("1x1, 4x300,2") == "1x1, 4x300,2"
    for bad in ("", "1x", "x4", "1x0", "1x2x3"):
        with pytest.raises(argparse.ArgumentTypeError):
            shape_list(bad)


def test_endpoints_check_their_ports():
    from flurka_export.serve import Endpoints

    assert Endpoints("127.0.0.1", 0, 0, 0).http_port == 0  # 0 = a free port, may repeat
    with pytest.raises(ValueError, match="--port-grpc 65536 is not a port: it must be 0 to 65535"):
        Endpoints("127.0.0.1", 8000, 65536, 8002)
    with pytest.raises(ValueError, match="--port-http and --port-grpc are both 8000"):
        Endpoints("127.0.0.1", 8000, 8000, 8002)
