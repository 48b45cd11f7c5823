"""Random malformed config.json files and random argument combinations for `new`, `export` and `verify`:
whatever the input, the command exits 0 or 1, a failure is exactly one stderr line without a traceback,
and nothing outside the command's own output changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flurka_export.cli.main import main
from flurka_export.models import build_model, save_pretrained
from tests.helpers import tiny_config

FIELDS = ["task", "attention", "num_layers", "hidden_size", "num_heads", "low_rank", "max_seq_len", "num_features",
          "vocab_size", "num_labels", "intermediate_size", "seed", "stabilizer", "eps", "image_size", "patch_size",
          "num_channels", "unknown_field"]
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**9), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                          st.integers(), max_size=1))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    save_pretrained(build_model(tiny_config()), root / "ckpt")
    return root


def _snapshot(root: Path, owned: set[str]) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not any(str(p.relative_to(root)).startswith(o) for o in owned)}


def _check(capsys, argv: list[str]) -> int:
    try:
        code = main(argv)
    except SystemExit as e:  # a bad flag value: a usage error, raised while the command line is parsed
        code = e.code
    out, err = capsys.readouterr()
    assert code in (0, 1), (argv, code, err)
    if code == 1 and not err and out.strip().splitlines()[-1].startswith("RESULT: FAIL"):
        return code  # verify's verdict: a failed check, reported in its table, not a bad input
    if code == 1:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, (argv, err)
    return code


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JUNK, min_size=1, max_size=3),
       raw=st.sampled_from([None, "{", "[]", "null", ""]))
def test_malformed_config_json(base, tmp_path_factory, capsys, changes, raw):
    work = tmp_path_factory.mktemp("cfg")
    ckpt = work / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes((base / "ckpt" / "model.safetensors").read_bytes())
    cfg = json.loads((base / "ckpt" / "config.json").read_text())
    cfg.update(changes)
    (ckpt / "config.json").write_text(raw if raw is not None else json.dumps(cfg))
    before = _snapshot(work, {"out.onnx"})
    _check(capsys, ["export", str(ckpt), "-o", str(work / "out.onnx")])
    assert _snapshot(work, {"out.onnx"}) == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(st.sampled_from([
    ["--num-layers", "0"], ["--num-heads", "3"], ["--hidden-size", "-8"], ["--low-rank", "0"],
    ["--max-seq-len", "1"], ["--eps", "-1"], ["--stabilizer", "nan"], ["--num-features", "0"],
    ["--vocab-size", "1"], ["--num-labels", "0"], ["--attention", "flurka-rfa"], ["--task", "image"],
    ["--preset", "small"], ["--seed", "-5"], ["--image-size", "15"], ["--patch-size", "4"], ["--overwrite"],
]), max_size=4))
def test_random_new_arguments(tmp_path_factory, capsys, args):
    work = tmp_path_factory.mktemp("new")
    (work / "keep.txt").write_text("keep")
    argv = ["new", "-o", str(work / "ckpt"), *[a for pair in args for a in pair]]
    code = _check(capsys, argv)
    assert (work / "keep.txt").read_text() == "keep"
    if code == 1:
        assert not (work / "ckpt").exists()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(st.sampled_from([
    ["--runtimes", "torch"], ["--runtimes", "ort"], ["--runtimes", ""], ["--runtimes", "ort,,bogus"],
    ["--optional", "trt"], ["--require", "trt"], ["--shapes", "0x5"], ["--shapes", "2x0"], ["--shapes", "abc"],
    ["--shapes", "1x9999"], ["--atol", "-0.1"], ["--rtol", "nan"], ["--seed", "3"], ["--per-layer"],
]), max_size=3))
def test_random_verify_arguments(base, tmp_path_factory, capsys, args):
    from flurka_export import export_onnx

    onnx_path = base / "m.onnx"
    if not onnx_path.exists():
        export_onnx(base / "ckpt", onnx_path)
    before = _snapshot(base, set())
    _check(capsys, ["verify", str(base / "ckpt"), str(onnx_path), *[a for pair in args for a in pair]])
    assert _snapshot(base, set()) == before
