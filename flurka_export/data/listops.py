"""Long Range Arena's ListOps, generated locally (Tay et al. 2020, after Nangia & Bowman 2018).

Expressions are nested MAX / MIN / MED / SUM_MOD lists over the digits 0-9, e.g.
`[MAX 2 9 [MIN 4 7 ] 0 ]` = 9; the label is the value (10 classes). As in LRA, trees are grown
with VALUE_P = 0.25 up to MAX_DEPTH = 10 with 2..MAX_ARGS = 10 arguments per operator, and kept
only when their token count lies in [min_len, max_len] (LRA: 500..2000). Every split has its own
fixed seed, so the same arguments always give the same examples.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence

import torch

OPERATORS = ("[MAX", "[MIN", "[MED", "[SM")
CLOSE = "]"
PAD, CLS = "<pad>", "<cls>"
# Token ids: pad 0 (so a zero-filled batch is all padding), CLS 1, digits 2..11, operators, "]".
VOCAB: tuple[str, ...] = (PAD, CLS, *(str(d) for d in range(10)), *OPERATORS, CLOSE)
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
PAD_ID, CLS_ID = TOKEN_ID[PAD], TOKEN_ID[CLS]
NUM_CLASSES = 10

VALUE_P = 0.25
MAX_DEPTH = 10
MAX_ARGS = 10
SPLIT_SEEDS = {"train": 1001, "validation": 2002, "test": 3003}


class _TooLong(Exception):
    pass


def _apply(op: str, args: list[int]) -> int:
    if op == "[MAX":
        return max(args)
    if op == "[MIN":
        return min(args)
    if op == "[MED":
        s = sorted(args)
        mid = len(s) // 2
        # LRA uses int(np.median(...)): the mean of the two middle values, truncated.
        return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) // 2
    return sum(args) % 10


def _grow(rng: random.Random, depth: int, out: list[str], limit: int) -> int:
    """Append one random (sub)tree's tokens to `out` and return its value; abort past `limit` tokens."""
    if len(out) > limit:
        raise _TooLong
    if depth >= MAX_DEPTH or rng.random() > VALUE_P:
        v = rng.randrange(10)
        out.append(str(v))
        return v
    op = rng.choice(OPERATORS)
    out.append(op)
    args = [_grow(rng, depth + 1, out, limit) for _ in range(rng.randint(2, MAX_ARGS))]
    out.append(CLOSE)
    return _apply(op, args)


def evaluate(tokens: Sequence[str]) -> int:
    """Value of an expression given as tokens (the generator's own check)."""
    stack: list[tuple[str, list[int]]] = []
    result = None
    for t in tokens:
        if t in OPERATORS:
            stack.append((t, []))
        elif t == CLOSE:
            op, args = stack.pop()
            v = _apply(op, args)
            if stack:
                stack[-1][1].append(v)
            else:
                result = v
        else:
            if stack:
                stack[-1][1].append(int(t))
            else:
                result = int(t)
    if stack or result is None:
        raise ValueError("unbalanced ListOps expression")
    return result


def generate_example(rng: random.Random, min_len: int, max_len: int) -> tuple[list[str], int]:
    """Draw trees until one has between min_len and max_len tokens (rejection sampling, as in LRA)."""
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len} max_len={max_len}")
    while True:
        out: list[str] = []
        try:
            value = _grow(rng, 1, out, max_len)
        except _TooLong:
            continue
        if min_len <= len(out) <= max_len:
            return out, value


@dataclasses.dataclass
class ListOpsSplit:
    """Token ids without CLS or padding (ragged) and labels of one split."""

    sequences: list[list[int]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, bucket: bool = False,
                max_seq_len: int | None = None, pad_to_multiple: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(input_ids, attention_mask, labels) padded to the batch's longest example (CLS first).

        Padding only to the batch maximum keeps the CPU cost near the real token count; `bucket`
        also groups examples of similar length (sorted within windows of 50 batches, then the
        batches shuffled), which halves the padding of LRA's 500..2000 length spread.
        """
        order = list(range(len(self)))
        rng = random.Random(seed)
        if shuffle:
            rng.shuffle(order)
        groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        if bucket:
            window = 50 * batch_size
            groups = []
            for w in range(0, len(order), window):
                chunk = sorted(order[w:w + window], key=lambda j: len(self.sequences[j]))
                groups += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
            if shuffle:
                rng.shuffle(groups)
        for idx in groups:
            yield collate([self.sequences[j] for j in idx], [self.labels[j] for j in idx], max_seq_len,
                          pad_to_multiple=pad_to_multiple)


def collate(seqs: Sequence[Sequence[int]], labels: Sequence[int], max_seq_len: int | None = None, *,
            pad_to_multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = max(len(s) for s in seqs) + 1
    if max_seq_len is not None and n > max_seq_len:
        raise ValueError(f"an example has {n} tokens with CLS, more than max_seq_len={max_seq_len}")
    n = -(-n // pad_to_multiple) * pad_to_multiple
    if max_seq_len is not None:
        n = min(n, max_seq_len)
    ids = torch.full((len(seqs), n), PAD_ID, dtype=torch.int64)
    mask = torch.zeros((len(seqs), n), dtype=torch.int64)
    for r, s in enumerate(seqs):
        ids[r, 0] = CLS_ID
        ids[r, 1:len(s) + 1] = torch.tensor(s, dtype=torch.int64)
        mask[r, :len(s) + 1] = 1
    return ids, mask, torch.tensor(list(labels), dtype=torch.int64)


def encode(tokens: Sequence[str]) -> list[int]:
    return [TOKEN_ID[t] for t in tokens]


def decode(ids: Sequence[int]) -> list[str]:
    return [VOCAB[i] for i in ids if i not in (PAD_ID, CLS_ID)]


def make_split(split: str, size: int, *, min_len: int = 500, max_len: int = 2000, seed: int = 0) -> ListOpsSplit:
    """`size` examples of split "train", "validation" or "test"; reproducible from (split, seed, lengths)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLIT_SEEDS)}")
    rng = random.Random(SPLIT_SEEDS[split] + 7919 * seed)
    seqs, labels = [], []
    for _ in range(size):
        tokens, value = generate_example(rng, min_len, max_len)
        seqs.append(encode(tokens))
        labels.append(value)
    return ListOpsSplit(seqs, labels)


def make_splits(train_size: int, val_size: int, test_size: int, *, min_len: int = 500, max_len: int = 2000,
                seed: int = 0) -> dict[str, ListOpsSplit]:
    sizes = {"train": train_size, "validation": val_size, "test": test_size}
    return {name: make_split(name, n, min_len=min_len, max_len=max_len, seed=seed) for name, n in sizes.items()}
