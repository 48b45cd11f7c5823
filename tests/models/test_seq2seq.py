"""The seq2seq family in PyTorch: cross states computed once per source give the teacher-forced logits step by
step, padding of the source changes nothing, beams carry their cross states, and the kinds are checked."""

import numpy as np
import pytest
import torch

from flurka_export import export_onnx
from flurka_export.generate import BeamOptions, SamplingOptions, beam_search, generate
from flurka_export.generate.seq2seq_decoder import Seq2SeqTorchDecoder, right_aligned
from flurka_export.models import ConfigError, FlurkaConfig, build_model

# (encoder, cross, decoder self-attention): FLuRKA cross-attention, the softmax baseline, linformer's
# shortened keys, random features on both sides
KINDS = [("flurka-elu", None, "kernel-elu"), ("softmax", "softmax", "softmax"),
         ("flurka-relu", "linformer", "kernel-relu"), ("flurka-rfa", "flurka-favor", "kernel-favor-causal"),
         ("flurka-elu", "kernel-dpfp", "kernel-elu")]


def s2s(enc, cross, dec, **kw):
    torch.manual_seed(0)
    return build_model(FlurkaConfig(task="seq2seq", attention=enc, cross_attention=cross, decoder_attention=dec,
                                    num_layers=2, hidden_size=32, num_heads=2, max_seq_len=40, low_rank=8,
                                    vocab_size=50, num_features=8, **kw))


@pytest.mark.parametrize("enc,cross,dec", KINDS)
def test_steps_over_cross_states_equal_teacher_forcing(enc, cross, dec):
    model = s2s(enc, cross, dec)
    src, tgt = torch.randint(0, 50, (2, 11)), torch.randint(0, 50, (2, 9))
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 7:] = 0
    full = model(src, mask, tgt)
    cross_states = model.cross_states(model.encode(src, mask), mask)
    logits, past = model.decode(tgt[:, :4], cross_states)
    parts, dmask = [logits], torch.ones(2, 4, dtype=torch.long)
    for t in range(4, 9):
        dmask = torch.cat([dmask, torch.ones(2, 1, dtype=torch.long)], 1)
        logits, past = model.decode(tgt[:, t:t + 1], cross_states, dmask, past)
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-4, rtol=1e-4)
    alone = model(src[1:2, :7], mask[1:2, :7], tgt[1:2])  # the padded row, unpadded
    torch.testing.assert_close(full[1:2], alone, atol=1e-5, rtol=1e-5)


def test_constant_size_cross_state_for_flurka_and_a_growing_one_for_softmax():
    flurka, soft = s2s(*KINDS[0]), s2s(*KINDS[1])
    for n in (5, 30):
        src = torch.randint(0, 50, (1, n))
        assert [t.shape for t in flurka.cross_states(flurka.encode(src))[0]] == [(1, 2, 16, 17)]
        assert [tuple(t.shape) for t in soft.cross_states(soft.encode(src))[0]][:2] == [(1, 2, n, 16)] * 2


def test_kernel_cross_attention_ignores_pad_keys():
    model = s2s("softmax", "kernel-elu", "kernel-elu")
    src, tgt = torch.randint(0, 50, (1, 6)), torch.randint(0, 50, (1, 4))
    padded = torch.cat([src, torch.randint(0, 50, (1, 5))], 1)
    mask = torch.cat([torch.ones(1, 6, dtype=torch.long), torch.zeros(1, 5, dtype=torch.long)], 1)
    torch.testing.assert_close(model(padded, mask, tgt), model(src, None, tgt), atol=1e-5, rtol=1e-5)


class Recompute(Seq2SeqTorchDecoder):
    """No past and no cached cross state: encoder and decoder rerun from scratch every step."""

    def prefill(self, ids, mask):
        self.src, self.src_mask = right_aligned(ids, mask)
        self.tgt = np.full((ids.shape[0], 1), self.start, np.int64)
        return self._full()

    def _full(self):
        with torch.no_grad():
            return self.model(torch.from_numpy(self.src), torch.from_numpy(self.src_mask),
                              torch.from_numpy(self.tgt))[:, -1].numpy()

    def step(self, tokens):
        self.tgt = np.concatenate([self.tgt, np.asarray(tokens)[:, None]], axis=1)
        return self._full()

    def reorder(self, rows):
        self.src, self.src_mask, self.tgt = self.src[rows], self.src_mask[rows], self.tgt[rows]


class Recording(Seq2SeqTorchDecoder):
    def reorder(self, rows):
        self.moves = getattr(self, "moves", 0) + int((np.asarray(rows) != np.arange(len(rows))).sum())
        super().reorder(rows)


@pytest.mark.parametrize("enc,cross,dec", [KINDS[0], KINDS[1]])
def test_greedy_and_beam_equal_recomputing_everything(enc, cross, dec):
    model = s2s(enc, cross, dec)
    with torch.no_grad():  # large random weights: the past matters to every choice, so a wrong reorder shows
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    sources = [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11, 12]]
    assert generate(Seq2SeqTorchDecoder(model, 0), sources, SamplingOptions(max_new_tokens=7)) == \
        generate(Recompute(model, 0), sources, SamplingOptions(max_new_tokens=7))
    opts = BeamOptions(num_beams=4, max_new_tokens=10)
    recording = Recording(model, 0)
    assert beam_search(recording, sources, opts) == beam_search(Recompute(model, 0), sources, opts)
    assert recording.moves > 0  # beams did change places: their self-attention states had to follow


def test_a_batch_gives_each_source_its_own_translation():
    model = s2s(*KINDS[0])
    sources = [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11, 12]]
    opts = SamplingOptions(max_new_tokens=6)
    assert generate(Seq2SeqTorchDecoder(model, 0), sources, opts) == \
        [generate(Seq2SeqTorchDecoder(model, 0), [s], opts)[0] for s in sources]


def test_lengths_and_kinds_are_checked(tmp_path):
    model = s2s(*KINDS[0], max_target_len=8)
    with pytest.raises(ValueError, match="max_target_len=8"):
        generate(Seq2SeqTorchDecoder(model, 0), [[1, 2]], SamplingOptions(max_new_tokens=8))
    with pytest.raises(ValueError, match="41 source tokens > max_seq_len=40"):
        generate(Seq2SeqTorchDecoder(model, 0), [[1] * 41], SamplingOptions(max_new_tokens=2))
    with pytest.raises(ConfigError, match="decoder_attention: attention 'flurka-elu' cannot be causal"):
        s2s("flurka-elu", None, "flurka-elu")
    (tmp_path / "m.onnx").write_text("x")  # a seq2seq export is a directory: a file path is refused before work
    with pytest.raises(ValueError, match="is a file; the output directory must be a directory"):
        export_onnx(model, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_text() == "x"
