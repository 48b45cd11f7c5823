"""Token-by-token generation for the families that generate (task lm): one loop over a `Decoder` per runtime
(PyTorch, ONNX Runtime), greedy or sampled, streaming each step's tokens as a Python iterator."""

from .beam import BeamOptions, beam_search
from .decoders import Decoder, OrtDecoder, TorchDecoder
from .loop import Step, Timing, generate, generate_steps
from .options import GENERATION_CONFIG_NAME, GenerationConfig, GenerationError, SamplingOptions

__all__ = [
    "GENERATION_CONFIG_NAME", "BeamOptions", "beam_search", "Decoder", "GenerationConfig", "GenerationError", "OrtDecoder", "SamplingOptions",
    "Step", "Timing", "TorchDecoder", "generate", "generate_steps",
]
