"""PyTorch as a Polygraphy runner: the reference every other runtime is compared against."""

from __future__ import annotations

import collections
import time

import numpy as np
import torch
from polygraphy.backend.base import BaseRunner
from polygraphy.common import TensorMetadata
from torch import nn


class TorchRunner(BaseRunner):
    """Runs a FLuRKA model in float32 on numpy feeds; optionally captures per-layer tensors.

    capture_layers: also return `layer{i}.attention` (the attention core output, before the output
    projection: the FlurkaAttention node's output) and `layer{i}.output` for every encoder layer.
    """

    def __init__(self, model: nn.Module, name: str = "torch", capture_layers: bool = False,
                 device: str = "cpu") -> None:
        super().__init__(name=name, prefix="torch-runner")
        self.model = model.float().eval().to(device)
        self.module = model.config.spec.export_module(self.model)  # what the export traced, called as the graph is
        self.device = device
        self.capture_layers = capture_layers
        self._captured: dict[str, torch.Tensor] = {}
        self._hooks: list = []

    def activate_impl(self) -> None:
        if self.capture_layers:
            for i, layer in enumerate(self.model.config.spec.hook_layers(self.model)):
                self._hooks.append(layer.attention.out.register_forward_pre_hook(self._save(f"layer{i}.attention", 0)))
                self._hooks.append(layer.register_forward_hook(self._save(f"layer{i}.output", None)))

    def _save(self, name: str, arg: int | None):  # noqa: ANN202
        def hook(module, inputs, output=None):  # noqa: ANN001, ANN202
            self._captured[name] = (inputs[arg] if arg is not None else output).detach()
        return hook

    def get_input_metadata_impl(self) -> TensorMetadata:
        meta = TensorMetadata()
        for t in self.model.config.spec.inputs(self.model.config):
            meta.add(t.name, np.int64 if t.dtype == "int64" else np.float32, tuple(None for _ in t.dims))
        return meta

    def infer_impl(self, feed_dict: dict[str, np.ndarray]) -> collections.OrderedDict:
        feeds = {k: torch.from_numpy(np.asarray(v)).to(self.device) for k, v in feed_dict.items()}
        feeds = {k: v.float() if v.is_floating_point() else v for k, v in feeds.items()}  # the model runs in float32
        self._captured.clear()
        start = time.perf_counter()
        config = self.model.config
        with torch.no_grad():
            result = self.module(**config.spec.torch_kwargs(config, feeds))
        self.inference_time = time.perf_counter() - start
        named = self.model.config.spec.name_outputs(self.model.config, result)
        out = collections.OrderedDict((k, v.float().cpu().numpy()) for k, v in named.items())
        for k, v in self._captured.items():
            out[k] = v.float().cpu().numpy()
        return out

    def deactivate_impl(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
