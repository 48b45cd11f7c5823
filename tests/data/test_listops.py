import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flurka_export.data import listops
from flurka_export.data.listops import CLS_ID, PAD_ID, collate, decode, evaluate, generate_example, make_split


def test_reproducible_and_splits_differ():
    a = make_split("train", 20, min_len=10, max_len=80)
    b = make_split("train", 20, min_len=10, max_len=80)
    assert a.sequences == b.sequences and a.labels == b.labels
    assert make_split("test", 20, min_len=10, max_len=80).sequences != a.sequences
    assert make_split("train", 20, min_len=10, max_len=80, seed=1).sequences != a.sequences


def test_lengths_labels_and_vocabulary():
    split = make_split("validation", 50, min_len=30, max_len=120)
    assert all(30 <= len(s) <= 120 for s in split.sequences)
    assert all(0 <= y < listops.NUM_CLASSES for y in split.labels)
    for seq, y in zip(split.sequences, split.labels, strict=True):
        assert evaluate(decode(seq)) == y
        assert PAD_ID not in seq and CLS_ID not in seq


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6))
def test_generator_value_matches_evaluator(seed):
    tokens, value = generate_example(random.Random(seed), 1, 200)
    assert evaluate(tokens) == value
    assert tokens.count("]") == sum(t in listops.OPERATORS for t in tokens)


def test_operators():
    assert evaluate("[MAX 2 9 [MIN 4 7 ] 0 ]".split()) == 9
    assert evaluate("[MED 1 2 3 4 ]".split()) == 2  # int(np.median) truncates 2.5
    assert evaluate("[MED 5 1 3 ]".split()) == 3
    assert evaluate("[SM 9 8 7 ]".split()) == 4
    with pytest.raises(ValueError):
        evaluate("[MAX 1 2".split())


def test_collate_and_buckets():
    ids, mask, labels = collate([[2, 3], [4, 5, 6, 7]], [1, 2])
    assert ids.tolist() == [[CLS_ID, 2, 3, PAD_ID, PAD_ID], [CLS_ID, 4, 5, 6, 7]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert labels.tolist() == [1, 2] and ids.dtype == torch.int64
    with pytest.raises(ValueError, match="max_seq_len"):
        collate([[2] * 10], [0], max_seq_len=5)
    split = make_split("train", 70, min_len=5, max_len=60)
    seen = []
    for ids, mask, _labels in split.batches(8, shuffle=True, bucket=True, seed=3):
        assert ids.shape == mask.shape and (ids[:, 0] == CLS_ID).all()
        seen += [tuple(r[1:int(m.sum())].tolist()) for r, m in zip(ids, mask, strict=True)]
    assert sorted(seen) == sorted(tuple(s) for s in split.sequences)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        make_split("dev", 1)
    with pytest.raises(ValueError, match="min_len"):
        make_split("train", 1, min_len=10, max_len=5)


def test_pad_to_multiple_is_capped_by_max_seq_len():
    ids, mask, _ = collate([[2, 3], [4]], [0, 1], pad_to_multiple=4)
    assert ids.shape == (2, 4) and mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]
    assert collate([[2, 3]], [0], max_seq_len=3, pad_to_multiple=64)[0].shape == (1, 3)
