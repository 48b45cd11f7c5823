"""Beam search: transformers' algorithm on the same model (an imported GPT-2: same logits), in PyTorch and ONNX
Runtime; recurrent states are reordered with their beams; bad options are one line."""

import numpy as np
import pytest
import torch

from flurka_export import export_onnx
from flurka_export.generate import GenerationConfig, GenerationError, OrtDecoder, TorchDecoder
from flurka_export.generate.beam import BeamOptions, beam_search
from flurka_export.importers.hf import import_hf_checkpoint
from flurka_export.models import FlurkaConfig, build_model, load_config, load_pretrained

T = pytest.importorskip("transformers", reason="the beam-search reference is transformers' generate (dev extra)")
EOS = 17  # a token these random weights often choose: hypotheses end at many lengths


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    d = tmp_path_factory.mktemp("beam")
    torch.manual_seed(0)
    theirs = T.GPT2LMHeadModel(T.GPT2Config(vocab_size=24, n_positions=40, n_embd=32, n_layer=2, n_head=4,
                                            bos_token_id=EOS, eos_token_id=EOS)).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0.0, 0.4)
    theirs.save_pretrained(d / "hf")
    import_hf_checkpoint(d / "hf", d / "ours")
    return theirs, d


def _theirs(model, prompt, opts):
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), num_beams=opts.num_beams, max_new_tokens=opts.max_new_tokens,
                             length_penalty=opts.length_penalty, early_stopping=opts.early_stopping, do_sample=False,
                             pad_token_id=EOS, eos_token_id=EOS)
    return out[0, len(prompt):].tolist()


@pytest.mark.parametrize("opts", [
    BeamOptions(num_beams=3, max_new_tokens=8),
    BeamOptions(num_beams=4, max_new_tokens=10, length_penalty=0.5, early_stopping=True),
    BeamOptions(num_beams=2, max_new_tokens=10, length_penalty=2.0, early_stopping="never"),
    BeamOptions(num_beams=3, max_new_tokens=10, length_penalty=-1.0),
], ids=["default", "lp0.5-early", "lp2-never", "lp-1"])
def test_matches_transformers_beam_search(gpt2, opts):
    theirs, d = gpt2
    prompts = [[1, 2, 3], [4, 5, 6, 9, 10], [11]]
    gen = GenerationConfig(eos_token_id=EOS, pad_token_id=EOS)
    ours = beam_search(TorchDecoder(load_pretrained(d / "ours")), prompts, opts, gen)
    assert ours == [_theirs(theirs, p, opts) for p in prompts]


def test_length_penalty_decides_between_lengths(gpt2):
    """The cases above are not all full-length beams: eos ends some early, so the length penalty matters."""
    _, d = gpt2
    gen = GenerationConfig(eos_token_id=EOS, pad_token_id=EOS)
    dec = TorchDecoder(load_pretrained(d / "ours"))
    short = beam_search(dec, [[4, 5, 6, 9, 10]], BeamOptions(num_beams=3, max_new_tokens=10, length_penalty=-1.0), gen)
    long = beam_search(dec, [[4, 5, 6, 9, 10]], BeamOptions(num_beams=3, max_new_tokens=10, length_penalty=2.0), gen)
    assert len(short[0]) < len(long[0]) and short[0][-1] == EOS


def test_ort_gives_the_same_beams(gpt2, tmp_path):
    _, d = gpt2
    path = export_onnx(d / "ours", tmp_path / "gpt2.onnx")
    prompts, opts = [[1, 2, 3], [4, 5, 6, 9, 10]], BeamOptions(num_beams=3, max_new_tokens=8)
    gen = GenerationConfig(eos_token_id=EOS, pad_token_id=EOS)
    ort_beams = beam_search(OrtDecoder(path, load_config(d / "ours")), prompts, opts, gen)
    assert ort_beams == beam_search(TorchDecoder(load_pretrained(d / "ours")), prompts, opts, gen)


def test_recurrent_states_follow_their_beams():
    """A kernel-elu model: reordering the states wrongly changes the beams, so beam search over steps must equal
    beam search that recomputes every beam from scratch (no past) at each step."""
    torch.manual_seed(0)
    model = build_model(FlurkaConfig(task="lm", attention="kernel-elu", num_layers=2, hidden_size=32, num_heads=2,
                                     max_seq_len=40, vocab_size=24))

    class Recompute(TorchDecoder):  # no past: the whole sequence each time, rows reordered explicitly
        def prefill(self, ids, mask):
            self.ids, self.full_mask = ids, mask
            return self._full()

        def _full(self):
            with torch.no_grad():
                return model(torch.from_numpy(self.ids), torch.from_numpy(self.full_mask))[:, -1].numpy()

        def step(self, tokens):
            self.ids = np.concatenate([self.ids, np.asarray(tokens)[:, None]], axis=1)
            self.full_mask = np.concatenate([self.full_mask, np.ones((len(tokens), 1), np.int64)], axis=1)
            return self._full()

        def reorder(self, rows):
            self.ids, self.full_mask = self.ids[rows], self.full_mask[rows]

    opts, prompts = BeamOptions(num_beams=4, max_new_tokens=8), [[1, 2, 3], [5, 6]]
    assert beam_search(TorchDecoder(model), prompts, opts) == beam_search(Recompute(model), prompts, opts)


@pytest.mark.parametrize("kw,msg", [(dict(num_beams=0), "num_beams=0"), (dict(early_stopping="soon"), "early_stopping"),
                                    (dict(length_penalty=float("nan")), "length_penalty")])
def test_bad_options(kw, msg):
    with pytest.raises(GenerationError, match=msg):
        BeamOptions(**kw)
