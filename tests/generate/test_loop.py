"""The decoding loop: batched left-padded prompts give each prompt's own tokens, eos ends a row, and bad
prompts are one-line errors."""

import numpy as np
import pytest
import torch

from flurka_export.generate import GenerationConfig, GenerationError, SamplingOptions, TorchDecoder, generate
from flurka_export.generate.decoders import positions_from_mask_np
from flurka_export.generate.loop import generate_steps, left_pad
from flurka_export.models import FlurkaConfig, build_model
from flurka_export.models.lm import positions_from_mask


@pytest.fixture(scope="module", params=["kernel-elu", "softmax"])
def decoder(request):
    torch.manual_seed(0)
    cfg = FlurkaConfig(task="lm", attention=request.param, num_layers=2, hidden_size=32, num_heads=2,
                       max_seq_len=40, vocab_size=60)
    return TorchDecoder(build_model(cfg))


def test_batch_equals_each_prompt_alone(decoder):
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [10]]
    batched = generate(decoder, prompts, SamplingOptions(max_new_tokens=6))
    alone = [generate(decoder, [p], SamplingOptions(max_new_tokens=6))[0] for p in prompts]
    assert batched == alone
    assert all(len(r) == 6 for r in batched)


def test_eos_ends_a_row_and_later_tokens_are_pad(decoder):
    first = generate(decoder, [[1, 2, 3]], SamplingOptions(max_new_tokens=6))[0]
    eos = first[2]
    gen = GenerationConfig(eos_token_id=eos, pad_token_id=0)
    steps = list(generate_steps(decoder, [[1, 2, 3]], SamplingOptions(max_new_tokens=6), gen))
    assert len(steps) == first.index(eos) + 1 and steps[-1].done.all()
    assert generate(decoder, [[1, 2, 3]], SamplingOptions(max_new_tokens=6), gen)[0] == first[:first.index(eos) + 1]


@pytest.mark.parametrize("prompts,kw,msg", [
    ([[1, 99]], {}, "token id 99 outside the vocabulary"),
    ([[]], {}, "prompt 0 is empty"),
    ([[1] * 38], dict(max_new_tokens=3), "max_seq_len=40"),
    ([], {}, "no prompt")])
def test_bad_prompts(decoder, prompts, kw, msg):
    with pytest.raises(GenerationError, match=msg):
        list(generate_steps(decoder, prompts, SamplingOptions(**kw)))


def test_left_pad_and_positions():
    ids, mask = left_pad([[5, 6], [7, 8, 9]], pad=0)
    assert ids.tolist() == [[0, 5, 6], [7, 8, 9]] and mask.tolist() == [[0, 1, 1], [1, 1, 1]]
    m = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    assert (positions_from_mask_np(m, 2) == positions_from_mask(torch.from_numpy(m), 2).numpy()).all()
