"""Which layers of a built model can be hooked: the one place that knows where each family keeps its
encoder layers (used by the PyTorch runner's per-layer capture and by parity's softmax-error study)."""

from __future__ import annotations

from torch import nn


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder layers in order: `model.encoder.layers` for the text families, `model.layers` for ViT."""
    return model.encoder.layers if hasattr(model, "encoder") else model.layers
