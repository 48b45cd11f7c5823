"""utils: temporary directories and atomic outputs leave nothing behind when a signal interrupts them."""

from __future__ import annotations

import os
import signal
import tempfile

import pytest

from flurka_export import utils


@pytest.fixture
def signal_inside_mkdtemp(monkeypatch):
    """mkdtemp that makes its directory and then receives SIGINT (held back by the caller, if it can)."""
    made = []
    real = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        made.append(real(*args, **kwargs))
        os.kill(os.getpid(), signal.SIGINT)
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    return made


def test_temporary_directory_removed_when_a_signal_arrives_as_it_is_made(signal_inside_mkdtemp, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with utils.temporary_directory(".x.", tmp_path):
            pytest.fail("the block must not run: the signal arrives first")
    assert signal_inside_mkdtemp and list(tmp_path.iterdir()) == []


def test_atomic_path_leaves_nothing_on_a_signal_at_its_start(signal_inside_mkdtemp, tmp_path):
    # the case that leaked out/.m.onnx.XXXX: SIGINT delivered the moment the temporary directory appeared
    with pytest.raises(KeyboardInterrupt):
        with utils.atomic_path(tmp_path / "out" / "m.onnx"):
            pytest.fail("the block must not run")
    assert list(tmp_path.iterdir()) == []  # not even out/, which it created


def test_temporary_directory_removed_after_the_block(tmp_path):
    with utils.temporary_directory(".y.", tmp_path) as d:
        (d / "f").write_text("x")
    assert list(tmp_path.iterdir()) == []
