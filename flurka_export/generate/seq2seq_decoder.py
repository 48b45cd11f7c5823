"""Decoding a seq2seq model with the same loop, sampling and beam search as decoder-only ones: `prefill` encodes
the source batch, computes each layer's cross state once and runs the decoder_start token; `step` feeds one target
token per row; `reorder` moves the self-attention past, the cross states and the masks with their beams."""

from __future__ import annotations

from typing import Any

import numpy as np

from .decoders import TorchDecoder


def right_aligned(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The loop left-pads prompts (decoder-only models append on the right); the encoder's positions start at
    its first column, so each source row is moved to start there, padding after it."""
    order = np.argsort(mask == 0, axis=1, kind="stable")  # real tokens first, each row's order kept
    return (np.ascontiguousarray(np.take_along_axis(ids, order, 1), dtype=np.int64),
            np.ascontiguousarray(np.take_along_axis(mask, order, 1), dtype=np.int64))


class Seq2SeqTorchDecoder(TorchDecoder):
    def __init__(self, model: Any, decoder_start_token_id: int) -> None:
        super().__init__(model)
        self.start = int(decoder_start_token_id)
        self.cross: Any = None

    def length_error(self, prompt_len: int, max_new_tokens: int) -> str | None:
        src, tgt = self.config.max_seq_len, self.model.dec_config.max_seq_len
        if prompt_len > src:
            return f"{prompt_len} source tokens > max_seq_len={src}, the encoder's limit"
        if max_new_tokens + 1 > tgt:  # the decoder_start token takes a position too
            return (f"max_new_tokens={max_new_tokens} + the start token > max_target_len={tgt}, the decoder's "
                    f"positions (use at most --max-new-tokens {tgt - 1})")
        return None

    def _run(self, tokens: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits, self.past = self.model.decode(tokens, self.cross, self.mask, self.past)
        return logits[:, -1].float().numpy()

    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        ids, mask = right_aligned(input_ids, attention_mask)
        ids, src_mask = torch.from_numpy(ids), torch.from_numpy(mask)
        with torch.no_grad():
            self.cross = self.model.cross_states(self.model.encode(ids, src_mask), src_mask)
        self.past = None
        self.mask = torch.ones(ids.shape[0], 1, dtype=torch.int64)
        return self._run(torch.full((ids.shape[0], 1), self.start, dtype=torch.int64))

    def reorder(self, rows: np.ndarray) -> None:
        import torch

        super().reorder(rows)  # the decoder's self-attention past and mask
        idx = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        self.cross = [tuple(t.index_select(0, idx) for t in layer) for layer in self.cross]
