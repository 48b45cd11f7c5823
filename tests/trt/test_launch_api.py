"""The plugin's fallback copy of the launcher API (used by the compile check without kernels) declares exactly
what the generated flurka_attention_launch.h declares."""

import re
from pathlib import Path

from flurka_export.kernels import c_headers

FALLBACK = Path(__file__).resolve().parents[2] / "plugins" / "flurka_attention" / "flurka_attention_launch_api.h"


def _declarations(text: str) -> set[str]:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"\s+", " ", text)
    functions = re.findall(r"(?:size_t|int|const char\*) flurka_attention_\w+\([^)]*\);", text)
    types = re.findall(r"typedef (?:enum|struct) \{[^}]*\} \w+;", text)
    return {re.sub(r"\s*([{};,*])\s*", r"\1", d) for d in functions + types}


def test_fallback_matches_generated_header():
    generated = _declarations(c_headers.LAUNCH_H)
    assert len(generated) >= 10  # 3 types, the launch API, device checks, prepare, build info
    assert _declarations(FALLBACK.read_text()) == generated
