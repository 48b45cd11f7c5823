"""Text in and out of `generate`: a Hugging Face tokenizer.json from the checkpoint (or the exported model's
metadata). Without one, prompts are token ids and outputs are printed as ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .options import GenerationError

TOKENIZER_NAME = "tokenizer.json"


def load_tokenizer(text: str | None) -> Any:
    """A `tokenizers.Tokenizer` from tokenizer.json's text, or None when there is none."""
    if text is None:
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise GenerationError("the model carries a tokenizer.json but the `tokenizers` package is missing: "
                              "pip install tokenizers") from None
    try:
        return Tokenizer.from_str(text)
    except Exception as e:  # tokenizers raises Exception subclasses of its own
        raise GenerationError(f"the model's tokenizer.json cannot be read: {e}") from None


def read_tokenizer_text(directory: str | Path) -> str | None:
    path = Path(directory) / TOKENIZER_NAME
    return path.read_text() if path.is_file() else None


class TextStream:
    """Decodes a growing list of ids and returns only the new text (byte-level BPE may need several ids
    before a character is complete, so the whole row is decoded each time)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""

    def push(self, token: int) -> str:
        self.ids.append(int(token))
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for the next id
            return ""
        new, self.text = text[len(self.text):], text
        return new
