"""`flurka-export serve` refuses bad input with one line (exit 1) before starting anything."""

import importlib.util
import socket

import pytest

from flurka_export.cli import main


def test_not_a_model(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing.onnx")]) == 1
    err = capsys.readouterr().err
    assert "is neither an ONNX file (.onnx), an export directory nor a checkpoint directory" in err and "Traceback" not in err


def test_port_in_use_names_the_flag(flurka_mlm, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", str(flurka_mlm), "--port-http", "0", "--port-grpc", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port} (--port-grpc)" in capsys.readouterr().err


def test_missing_server_says_how_to_install(flurka_mlm, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytriton" else real(name, *a))
    assert main(["serve", str(flurka_mlm)]) == 1
    assert "pip install 'flurka-export[serve]'" in capsys.readouterr().err


def test_bad_numbers(flurka_mlm, capsys):
    for flag in ("--instances", "--max-batch", "--threads"):
        with pytest.raises(SystemExit) as e:  # a usage error, raised while parsing
            main(["serve", str(flurka_mlm), flag, "0"])
        assert e.value.code == 1
        assert f"argument {flag}: must be an integer >= 1, not 0" in capsys.readouterr().err
