"""The exported model refuses sequences longer than its max_seq_len, with an error naming the limit."""

import numpy as np
import pytest

from flurka_export import export_onnx
from flurka_export.export.inspect import inspect_model
from flurka_export.models import build_model
from flurka_export.runtimes.ort_runner import make_session
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    path = tmp_path_factory.mktemp("guard") / "m.onnx"
    export_onnx(build_model(tiny_config(max_seq_len=64)), path, max_seq_len=40)
    return path


def _feed(n):
    return {"input_ids": np.ones((2, n), np.int64), "attention_mask": np.ones((2, n), np.int64)}


def test_within_the_limit_runs(limited):
    sess = make_session(limited)
    for n in (1, 17, 40):
        assert sess.run(None, _feed(n))[0].shape == (2, 2)


@pytest.mark.parametrize("n", [41, 64, 65])
def test_beyond_the_limit_names_it(limited, n):
    with pytest.raises(Exception, match="exceeds max_seq_len=40"):
        make_session(limited).run(None, _feed(n))


def test_inspect_shows_the_enforced_limit(limited):
    info = inspect_model(limited)
    assert info["max_seq_len"] == 40 and info["max_seq_len_enforced"]


def test_image_models_are_left_alone(tmp_path):
    path = tmp_path / "img.onnx"
    export_onnx(build_model(tiny_config(task="image")), path)
    assert not inspect_model(path)["max_seq_len_enforced"]
