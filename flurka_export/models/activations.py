"""The feed-forward activations every family uses, by config name (config_rules.ACTIVATIONS)."""

from __future__ import annotations

from torch import nn


def activation(name: str) -> nn.Module:
    """gelu is exact GELU; gelu_tanh is its tanh approximation (ONNX Gelu(approximate="tanh") from opset 20)."""
    return {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU(), "silu": nn.SiLU()}[name]
