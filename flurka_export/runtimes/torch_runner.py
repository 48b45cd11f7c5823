"""PyTorch as a Polygraphy runner: the reference every other runtime is compared against."""

from __future__ import annotations

import collections
import time

import numpy as np
import torch
from polygraphy.backend.base import BaseRunner
from polygraphy.common import TensorMetadata
from torch import nn

from ..models.config import output_name
from ..models.layers import encoder_layers


class TorchRunner(BaseRunner):
    """Runs a FLuRKA model in float32 on numpy feeds; optionally captures per-layer tensors.

    capture_layers: also return `layer{i}.attention` (the attention core output, before the output
    projection: the FlurkaAttention node's output) and `layer{i}.output` for every encoder layer.
    """

    def __init__(self, model: nn.Module, name: str = "torch", capture_layers: bool = False,
                 device: str = "cpu") -> None:
        super().__init__(name=name, prefix="torch-runner")
        self.model = model.float().eval().to(device)
        self.device = device
        self.capture_layers = capture_layers
        self._captured: dict[str, torch.Tensor] = {}
        self._hooks: list = []

    def activate_impl(self) -> None:
        if self.capture_layers:
            for i, layer in enumerate(encoder_layers(self.model)):
                self._hooks.append(layer.attention.out.register_forward_pre_hook(self._save(f"layer{i}.attention", 0)))
                self._hooks.append(layer.register_forward_hook(self._save(f"layer{i}.output", None)))

    def _save(self, name: str, arg: int | None):  # noqa: ANN202
        def hook(module, inputs, output=None):  # noqa: ANN001, ANN202
            self._captured[name] = (inputs[arg] if arg is not None else output).detach()
        return hook

    def get_input_metadata_impl(self) -> TensorMetadata:
        meta = TensorMetadata()
        if self.model.config.task == "image":
            meta.add("pixel_values", np.float32, (None, None, None, None))
        else:
            meta.add("input_ids", np.int64, (None, None)).add("attention_mask", np.int64, (None, None))
            if self.model.config.type_vocab_size:
                meta.add("token_type_ids", np.int64, (None, None))
        return meta

    def infer_impl(self, feed_dict: dict[str, np.ndarray]) -> collections.OrderedDict:
        feeds = {k: torch.from_numpy(np.asarray(v)).to(self.device) for k, v in feed_dict.items()}
        if "pixel_values" in feeds:
            feeds["pixel_values"] = feeds["pixel_values"].float()
        self._captured.clear()
        start = time.perf_counter()
        with torch.no_grad():
            result = self.model(**feeds)
        self.inference_time = time.perf_counter() - start
        out = collections.OrderedDict({output_name(self.model.config.task): result.float().cpu().numpy()})
        for k, v in self._captured.items():
            out[k] = v.float().cpu().numpy()
        return out

    def deactivate_impl(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
