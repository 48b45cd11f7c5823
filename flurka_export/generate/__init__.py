"""Token-by-token generation for the families that generate (lm, seq2seq): one loop over a `Decoder` per runtime
(PyTorch, ONNX Runtime), greedy, sampled or beam search, streaming each step's tokens as a Python iterator."""

from typing import Any

from .beam import BeamOptions, beam_search
from .decoders import Decoder, OrtDecoder, TorchDecoder
from .loop import Step, Timing, generate, generate_steps
from .options import GENERATION_CONFIG_NAME, GenerationConfig, GenerationError, SamplingOptions


def torch_decoder(model: Any, gen: GenerationConfig = GenerationConfig()) -> Decoder:
    """The PyTorch decoder of a generating model: an encoder-decoder (it has cross states) starts its target from
    the decoder_start token; a decoder-only model continues its prompt."""
    from .seq2seq_decoder import Seq2SeqTorchDecoder

    if hasattr(model, "cross_states"):
        return Seq2SeqTorchDecoder(model, gen.decoder_start)
    return TorchDecoder(model)


def ort_decoder(path: Any, config: Any, gen: GenerationConfig = GenerationConfig()) -> Decoder:
    """The ONNX Runtime decoder of an export: a directory (seq2seq: encoder and decoder files) or one file."""
    from pathlib import Path

    from .seq2seq_decoder import OrtSeq2SeqDecoder

    if Path(path).is_dir():
        return OrtSeq2SeqDecoder(path, config, gen.decoder_start)
    return OrtDecoder(path, config)


__all__ = [
    "GENERATION_CONFIG_NAME", "BeamOptions", "beam_search", "Decoder", "GenerationConfig", "GenerationError", "OrtDecoder", "SamplingOptions",
    "Step", "Timing", "TorchDecoder", "generate", "generate_steps", "ort_decoder",
    "torch_decoder",
]
