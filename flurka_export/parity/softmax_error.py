"""How far a FLuRKA model's attention is from exact softmax attention with the same weights."""

from __future__ import annotations

from typing import Any

from ..models import FlurkaConfig
from .inputs import Shape, make_inputs


def softmax_error(model: Any, shapes: list[Shape], seed: int) -> list[dict[str, Any]]:
    """Per layer: ||attn_flurka(x) - attn_softmax(x)|| / ||attn_softmax(x)|| on the FLuRKA model's own
    layer inputs, with the same Q/K/V/O weights (the paper's approximation-quality question)."""
    import torch

    from ..models.attention import FlurkaSelfAttention

    config: FlurkaConfig = model.config
    exact_cfg = config.replace(attention="softmax")
    layers = config.spec.hook_layers(model)
    exact = []
    for i, layer in enumerate(layers):
        att = FlurkaSelfAttention(exact_cfg, i)
        att.load_state_dict({k: v for k, v in layer.attention.state_dict().items() if k.split(".")[0] in
                             ("query", "key", "value", "out")})
        exact.append(att.eval())
    sums = [[0.0, 0.0] for _ in layers]

    def hook_for(i: int):  # noqa: ANN202
        def hook(module, args, output):  # noqa: ANN001, ANN202
            x, mask = args[0], args[1] if len(args) > 1 else None
            ref = exact[i](x, mask)
            keep = torch.ones(x.shape[:2], dtype=torch.bool) if mask is None else mask.bool()
            sums[i][0] += float(((output - ref)[keep] ** 2).sum())
            sums[i][1] += float((ref[keep] ** 2).sum())
        return hook

    hooks = [layer.attention.register_forward_hook(hook_for(i)) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            for si, shape in enumerate(shapes):
                feed = make_inputs(config, shape, seed=seed + si)
                model(**{k: torch.from_numpy(v) for k, v in feed.items()})
    finally:
        for h in hooks:
            h.remove()
    return [{"layer": i, "relative_error": (num / den) ** 0.5 if den else 0.0} for i, (num, den) in enumerate(sums)]
