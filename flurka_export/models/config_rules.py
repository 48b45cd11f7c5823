"""Allowed type and range of every FlurkaConfig field, checked one field at a time.

A bad value is reported as one line that names the field, the value and what is allowed
(`ConfigError`), never as a torch traceback from deep inside model construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A FlurkaConfig field (or config.json) with a value outside what is allowed: one line."""


# Accepted spellings of the activations (Hugging Face and the authors' configs use these names).
ACTIVATION_ALIASES = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
                      "swish": "silu"}
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu")


@dataclass(frozen=True)
class Rule:
    kind: str  # "int", "float", "bool", "choice"
    allowed: str  # what the error message says is allowed
    check: Callable[[Any], bool] = lambda v: True
    optional: bool = False  # None is allowed (means: the family's default)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def positive_int(optional: bool = False) -> Rule:
    return Rule("int", "an integer >= 1" + (" or null" if optional else ""), lambda v: v >= 1, optional)


def non_negative_int(what: str = "an integer >= 0") -> Rule:
    return Rule("int", what, lambda v: v >= 0)


def number(allowed: str, check: Callable[[float], bool]) -> Rule:
    return Rule("float", allowed, check)


def boolean(optional: bool = False) -> Rule:
    return Rule("bool", "true or false" + (" or null (the family's default)" if optional else ""), optional=optional)


def choice(options: tuple[str, ...], optional: bool = False) -> Rule:
    text = "one of " + ", ".join(options) + (" or null" if optional else "")
    return Rule("choice", text, lambda v: v in options, optional)


def check_field(name: str, value: Any, rule: Rule) -> Any:
    """The value to store (ints widened to float for float fields), or raise ConfigError."""
    if value is None and rule.optional:
        return None
    ok_type = {"int": _is_int, "float": _is_number, "bool": lambda v: isinstance(v, bool),
               "choice": lambda v: isinstance(v, str)}[rule.kind](value)
    if not ok_type or not rule.check(value):
        raise ConfigError(f"invalid FlurkaConfig: {name}={value!r} is not allowed; {name} must be {rule.allowed}")
    return float(value) if rule.kind == "float" else value


def field_rules(tasks: tuple[str, ...], attention_kinds: tuple[str, ...]) -> dict[str, Rule]:
    return {
        "task": choice(tasks),
        "attention": choice(attention_kinds),
        **{n: positive_int() for n in ("num_layers", "hidden_size", "num_heads", "low_rank", "max_seq_len",
                                       "num_features", "vocab_size", "num_labels", "image_size", "patch_size",
                                       "num_channels", "nu")},
        "intermediate_size": positive_int(optional=True),
        "stabilizer": number("a finite number >= 0", lambda v: v >= 0),
        "eps": number("a finite number >= 0", lambda v: v >= 0),
        "dropout": number("a number in [0, 1)", lambda v: 0 <= v < 1),
        "layer_norm_eps": number("a finite number > 0", lambda v: v > 0),
        "seed": non_negative_int(),
        "type_vocab_size": non_negative_int("an integer >= 0 (0: no token_type_ids input)"),
        "hidden_act": choice(ACTIVATIONS),
        "mlm_act": choice(ACTIVATIONS, optional=True),
        "pre_norm": boolean(optional=True),
        "position_offset": non_negative_int(),
        "pooler": boolean(),
        "tie_word_embeddings": boolean(),
        "mlm_transform": boolean(),
        "mask_keys_in_attention": boolean(),
        "decoder_attention": choice(attention_kinds, optional=True),
        "cross_attention": choice(attention_kinds, optional=True),
        "num_decoder_layers": positive_int(optional=True),
        "max_target_len": positive_int(optional=True),
    }
