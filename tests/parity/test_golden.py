"""Golden files: written here from the checkpoint, checked elsewhere against an ONNX file or a TensorRT plan."""

import numpy as np
import pytest

from flurka_export import export_onnx
from flurka_export.cli import main
from flurka_export.models import build_model, save_pretrained
from flurka_export.parity.golden import GOLDEN_META, check_golden, load_feeds, read_golden, save_golden
from flurka_export.parity.inputs import make_inputs
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("golden")
    model = build_model(tiny_config(attention="flurka-favor"))
    save_pretrained(model, tmp / "ck")
    export_onnx(model, tmp / "m.onnx")
    other = build_model(tiny_config(attention="flurka-favor"))  # same architecture, other random weights
    export_onnx(other, tmp / "other.onnx")
    return tmp, model.config


def test_save_and_check_against_onnx_runtime(exported, tmp_path):
    tmp, config = exported
    meta = save_golden(tmp / "ck", tmp / "m.onnx", tmp_path / "g.npz", seed=3)
    assert meta["dtype"] == "fp32" and meta["atol"] == 1e-4 and len(meta["cases"]) == 3
    with np.load(tmp_path / "g.npz", allow_pickle=False) as npz:  # plain arrays only
        assert GOLDEN_META in npz.files and "0/out/logits" in npz.files and "0/out/layer0.attention" in npz.files
    _, feeds, outputs = read_golden(tmp_path / "g.npz")
    np.testing.assert_array_equal(feeds[0]["input_ids"], make_inputs(config, (1, 1), seed=3)["input_ids"])
    report = check_golden(tmp_path / "g.npz", tmp / "m.onnx")
    assert report.passed and not report.notes
    compared = {r["output"] for r in report.rows}
    assert "logits" in compared and "layer1.output" in compared and "layer0.attention" in compared
    # A different model fails, and the note says the ONNX file is not the one the golden file came from.
    bad = check_golden(tmp_path / "g.npz", tmp / "other.onnx")
    assert not bad.passed and any("differs from the ONNX file" in n for n in bad.notes)


def test_real_inputs_from_npz_and_polygraphy_json(exported, tmp_path):
    tmp, config = exported
    feeds = [make_inputs(config, (2, 9), seed=7), make_inputs(config, (1, 4), seed=8)]
    np.savez(tmp_path / "one.npz", **feeds[0])
    np.savez(tmp_path / "many.npz", **{f"{i}/{k}": v for i, f in enumerate(feeds) for k, v in f.items()})
    from polygraphy.json import save_json

    save_json(feeds, str(tmp_path / "inputs.json"))
    assert [sorted(f) for f in load_feeds(tmp_path / "many.npz")] == [["attention_mask", "input_ids"]] * 2
    for src, n in (("one.npz", 1), ("many.npz", 2), ("inputs.json", 2)):
        meta = save_golden(tmp / "ck", tmp / "m.onnx", tmp_path / "g.npz", load_inputs=tmp_path / src)
        assert len(meta["cases"]) == n and meta["inputs_from"] == src
        assert meta["cases"][-1]["shape"] == ("2x9" if n == 1 else "1x4")
        _, got, _ = read_golden(tmp_path / "g.npz")
        np.testing.assert_array_equal(got[0]["input_ids"], feeds[0]["input_ids"])
    np.savez(tmp_path / "wrong.npz", input_ids=feeds[0]["input_ids"])
    with pytest.raises(ValueError, match=r"input set 0 has \['input_ids'\]; the model takes"):
        save_golden(tmp / "ck", tmp / "m.onnx", tmp_path / "g2.npz", load_inputs=tmp_path / "wrong.npz")
    assert not (tmp_path / "g2.npz").exists()


def test_cli_round_trip_and_errors(exported, tmp_path, capsys):
    tmp, _ = exported
    g = str(tmp_path / "g.npz")
    assert main(["verify", str(tmp / "ck"), str(tmp / "m.onnx"), "--save-golden", g, "--shapes", "2x8"]) == 0
    assert "1 input sets" in capsys.readouterr().out
    assert main(["verify", str(tmp / "m.onnx"), "--golden", g]) == 0
    assert "RESULT: PASS" in capsys.readouterr().out
    assert main(["verify", str(tmp / "other.onnx"), "--golden", g]) == 1
    assert "RESULT: FAIL" in capsys.readouterr().out
    for argv, message in (
        (["verify", str(tmp / "ck"), str(tmp / "m.onnx"), "--golden", g], "give only the model to check"),
        (["verify", str(tmp / "m.onnx"), "--golden", g, "--save-golden", g], "do not go together"),
        (["verify", str(tmp / "ck"), str(tmp / "m.onnx"), "--load-inputs", g], "use it with --save-golden"),
        (["verify", str(tmp / "m.onnx"), "--golden", str(tmp / "m.onnx")], "is not a"),
        (["verify", str(tmp / "ck")], "verify needs the checkpoint and the ONNX file"),
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_plan_without_tensorrt_is_one_sentence(exported, tmp_path, capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    tmp, _ = exported
    g = str(tmp_path / "g.npz")
    save_golden(tmp / "ck", tmp / "m.onnx", g, shapes="1x4")
    (tmp_path / "m.plan").write_bytes(b"plan")
    assert main(["verify", str(tmp_path / "m.plan"), "--golden", g]) == 1
    err = capsys.readouterr().err.strip()
    assert "TensorRT is not installed" in err and len(err.splitlines()) == 1
