"""The authors' run configuration (their ml_collections config saved as JSON) and what it means for the
model their code runs: which attention kind each of their attention modules computes at inference.

Their modules decide per call whether to shorten keys/values with the learned matrices (E_128 for
128-token inputs, E_512 for 512-token inputs): LinPerfMHA only when `up_train` and `switch` are both
true; LinRNNsMHA when `not up_train or switch`; LinRFAMHA and LinMHA always. `switch` is true at
inference (their eval calls leave it at its default), so it is read from the config only when given.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


class FlaxConfigError(ValueError):
    pass


# attention_type -> (kind when downsampling, kind when not); None: the module never does that.
FLAX_ATTENTION: dict[str, tuple[str | None, str | None]] = {
    "VanillaMHA": (None, "softmax"),
    "LinMHA": ("linformer", None),
    "PerfMHA": (None, "kernel-relu"),
    "LinPerfMHA": ("flurka-relu", "kernel-relu"),
    "RNNsMHA": (None, "kernel-elu"),
    "LinRNNsMHA": ("flurka-elu", "kernel-elu"),
    "RFAMHA": (None, "kernel-rfa"),
    "LinRFAMHA": ("flurka-rfa", None),
}
UNSUPPORTED = {
    "EVAMHA": "EVAMHA (EVA attention) is not supported yet",
    "LinEVAMHA": "LinEVAMHA (Linformer + EVA, the authors' 4th composition and their configs' default) is not "
                 "supported yet",
}


@dataclasses.dataclass
class FlaxRunConfig:
    """The values of their config that change what the model computes (None: not given)."""

    attention_type: str | None = None
    up_train: bool | None = None
    switch: bool = True
    hidden_act: str | None = None
    max_seq_length: int | None = None
    downsampling_k: int | None = None
    type_vocab_size: int | None = None
    layer_norm_eps: float | None = None

    def attention_kind(self) -> str | None:
        if self.attention_type is None:
            return None
        if self.attention_type in UNSUPPORTED:
            raise FlaxConfigError(UNSUPPORTED[self.attention_type])
        if self.attention_type not in FLAX_ATTENTION:
            raise FlaxConfigError(f"attention_type {self.attention_type!r} is unknown; known: "
                                  f"{', '.join([*FLAX_ATTENTION, *UNSUPPORTED])}")
        low_rank, full = FLAX_ATTENTION[self.attention_type]
        if low_rank and full:  # LinPerfMHA, LinRNNsMHA: up_train decides
            if self.up_train is None:
                raise FlaxConfigError(f"{self.attention_type} needs up_train in the config: it decides whether "
                                      f"keys and values are downsampled")
            if self.attention_type == "LinPerfMHA":
                downsample = self.up_train and self.switch
            else:
                downsample = (not self.up_train) or self.switch
            return low_rank if downsample else full
        return low_rank or full


def read_run_config(source: str | Path | dict[str, Any]) -> FlaxRunConfig:
    """Their config as JSON (top level and its `model` section, as run_classifier / run_pretraining build it)."""
    if isinstance(source, dict):
        data = source
    else:
        try:
            data = json.loads(Path(source).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FlaxConfigError(f"--flax-config {source}: cannot read it as JSON: {e}") from None
    if not isinstance(data, dict):
        raise FlaxConfigError(f"--flax-config {source}: expected a JSON object (their ml_collections config)")
    flat = {**data, **(data.get("model") or {})}
    fields = {f.name: f.type for f in dataclasses.fields(FlaxRunConfig)}
    values: dict[str, Any] = {}
    for name in fields:
        if flat.get(name) is None:
            continue
        value = flat[name]
        expected = {"attention_type": str, "hidden_act": str, "up_train": bool, "switch": bool,
                    "max_seq_length": int, "downsampling_k": int, "type_vocab_size": int,
                    "layer_norm_eps": (int, float)}[name]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise FlaxConfigError(f"--flax-config {source}: {name}={value!r} has the wrong type")
        values[name] = value
    return FlaxRunConfig(**values)
