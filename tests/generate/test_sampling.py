"""Sampling: temperature, then top-k, then top-p, as transformers' logits processors; greedy is argmax."""

import numpy as np
import pytest

from flurka_export.generate import GenerationError, SamplingOptions
from flurka_export.generate.sampling import next_tokens, warp


def test_top_k_then_top_p_keep_the_expected_tokens():
    logits = np.log(np.array([[0.5, 0.2, 0.15, 0.1, 0.05]]))
    kept = np.isfinite(warp(logits, SamplingOptions(greedy=False, top_k=4)))
    assert kept.tolist() == [[True, True, True, True, False]]
    kept = np.isfinite(warp(logits, SamplingOptions(greedy=False, top_p=0.7)))
    assert kept.tolist() == [[True, True, False, False, False]]  # 0.5 < 0.7, 0.5 + 0.2 reaches it
    kept = np.isfinite(warp(logits, SamplingOptions(greedy=False, top_p=0.01)))
    assert kept.tolist() == [[True, False, False, False, False]]  # the best token always stays


def test_matches_transformers_processors():
    transformers = pytest.importorskip("transformers")
    import torch

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 40)).astype(np.float32)
    opts = SamplingOptions(greedy=False, temperature=0.7, top_k=12, top_p=0.8)
    procs = transformers.LogitsProcessorList([transformers.TemperatureLogitsWarper(0.7),
                                              transformers.TopKLogitsWarper(12), transformers.TopPLogitsWarper(0.8)])
    theirs = procs(None, torch.from_numpy(logits)).numpy()
    ours = warp(logits, opts)
    assert (np.isfinite(ours) == np.isfinite(theirs)).all()
    np.testing.assert_allclose(ours[np.isfinite(ours)], theirs[np.isfinite(theirs)], rtol=1e-5)


def test_sampling_draws_only_kept_tokens_and_follows_the_seed():
    logits = np.log(np.array([[0.5, 0.2, 0.15, 0.1, 0.05]] * 2000))
    opts = SamplingOptions(greedy=False, top_k=2)
    draws = next_tokens(logits, opts, np.random.default_rng(1))
    assert set(draws.tolist()) == {0, 1}
    assert abs((draws == 0).mean() - 0.5 / 0.7) < 0.05
    assert (next_tokens(logits, opts, np.random.default_rng(1)) == draws).all()
    assert next_tokens(logits[:1], SamplingOptions(), np.random.default_rng(0)).tolist() == [0]


@pytest.mark.parametrize("kw,msg", [
    (dict(top_p=0.0), "top_p=0.0"), (dict(top_p=1.5), "top_p=1.5"), (dict(temperature=-1.0), "temperature"),
    (dict(top_k=-2), "top_k"), (dict(max_new_tokens=0), "max_new_tokens")])
def test_bad_options_are_one_line(kw, msg):
    with pytest.raises(GenerationError, match=msg):
        SamplingOptions(**kw)
