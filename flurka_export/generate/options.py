"""What `generate` is asked for: the checkpoint's special tokens (generation_config.json) and the decoding
options, each checked up front with a one-line error that names the value and what is allowed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

GENERATION_CONFIG_NAME = "generation_config.json"


class GenerationError(ValueError):
    """Bad generation input: one line naming the value and what is allowed."""


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """Special token ids, as transformers' generation_config.json names them (GPT-2: pad is its eos)."""

    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    decoder_start_token_id: int | None = None  # seq2seq: the decoder's first input (default: bos, else pad)

    @property
    def decoder_start(self) -> int:
        for v in (self.decoder_start_token_id, self.bos_token_id):
            if v is not None:
                return v
        return self.pad

    @property
    def pad(self) -> int:
        """The id written after a row has ended and into left padding (pad, else eos, else 0)."""
        for v in (self.pad_token_id, self.eos_token_id):
            if v is not None:
                return v
        return 0

    def check(self, vocab_size: int) -> GenerationConfig:
        for name, v in dataclasses.asdict(self).items():
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < vocab_size):
                raise GenerationError(f"{name}={v!r} is not a token id of the vocabulary (0..{vocab_size - 1})")
        return self

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v is not None}, indent=2,
                          sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str) -> GenerationConfig:
        if not isinstance(data, dict):
            raise GenerationError(f"{source} must hold a JSON object, not {type(data).__name__}")
        eos = data.get("eos_token_id")
        if isinstance(eos, list):  # transformers allows several; we stop at the first
            eos = eos[0] if eos else None
        fields = {"bos_token_id": data.get("bos_token_id"), "eos_token_id": eos, "pad_token_id": data.get("pad_token_id"),
                  "decoder_start_token_id": data.get("decoder_start_token_id")}
        for name, v in fields.items():
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise GenerationError(f"{source}: {name} must be an integer token id, got {v!r}")
        return cls(**fields)

    @classmethod
    def read(cls, directory: str | Path) -> GenerationConfig:
        """generation_config.json of a checkpoint directory; no file means no special tokens."""
        path = Path(directory) / GENERATION_CONFIG_NAME
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GenerationError(f"{path} is not valid JSON: {e}") from None
        return cls.from_dict(data, str(path))


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """Greedy when `greedy` (or temperature 0); otherwise sampling with temperature, then top-k, then top-p,
    the order of transformers' logits processors."""

    max_new_tokens: int = 32
    greedy: bool = True
    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise GenerationError(f"max_new_tokens={self.max_new_tokens!r} is not allowed; it must be an integer >= 1")
        if not self.temperature >= 0 or self.temperature == float("inf"):
            raise GenerationError(f"temperature={self.temperature!r} is not allowed; it must be a finite number >= 0 "
                                  "(0 means greedy)")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise GenerationError(f"top_k={self.top_k!r} is not allowed; it must be an integer >= 0 (0: off)")
        if not 0 < self.top_p <= 1:
            raise GenerationError(f"top_p={self.top_p!r} is not allowed; it must be in (0, 1] (1: off)")

    @property
    def samples(self) -> bool:
        return not self.greedy and self.temperature > 0
