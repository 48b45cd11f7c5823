"""ONNX Runtime's transformer fusions (LayerNorm, SkipLayerNorm, bias + GELU, embedding LayerNorm,
softmax Attention) applied offline without losing FlurkaAttention.

Why `onnxruntime.transformers.optimizer` at opt_level=0: at that level it runs only its Python pattern
fusions on the graph and never hands the model to an ONNX Runtime session, so model-local functions are
left alone. Saving a session-optimized model (SessionOptions.optimized_model_filepath, any level) inlines
them instead. The session-level optimizations still run in memory whenever the file is loaded, so
nothing is lost by not saving them.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
from collections.abc import Iterator

import onnx

from ..onnx_io import META_CONFIG
from .flurka_guard import assert_preserved, snapshot

# Level name -> FusionOptions switches turned off (None: no fusions at all).
LEVELS: dict[str, tuple[str, ...] | None] = {
    "none": None,
    "basic": ("enable_attention", "enable_embed_layer_norm", "enable_rotary_embeddings", "enable_qordered_matmul"),
    "all": ("enable_qordered_matmul",),
}
LEVEL_HELP = ("none: no fusions (quantize only); basic: LayerNorm, SkipLayerNorm, bias+GELU; all: basic plus "
              "embedding LayerNorm and ORT Attention for softmax layers (default)")


@contextlib.contextmanager
def quiet_ort_logs() -> Iterator[None]:
    """The optimizer logs a warning because the producer is not "pytorch": not actionable here."""
    loggers = [logging.getLogger(n) for n in ("onnxruntime.transformers", "fusion_utils", "onnx_model", "optimizer")]
    old = [lg.level for lg in loggers]
    root_level = logging.root.level
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    logging.root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)
        logging.root.setLevel(root_level)


def _heads_and_hidden(model: onnx.ModelProto) -> tuple[int, int]:
    props = {p.key: p.value for p in model.metadata_props}
    try:
        config = json.loads(props[META_CONFIG])
        return int(config["num_heads"]), int(config["hidden_size"])
    except (KeyError, ValueError, TypeError):
        return 0, 0  # 0 lets the optimizer detect them from the graph


def apply_ort_fusions(model: onnx.ModelProto, level: str = "all") -> tuple[onnx.ModelProto, dict[str, int]]:
    """Returns the fused model and {fused op: count} (ops that the fusions added to the graph).

    Raises FlurkaNodeLost if any FlurkaAttention node, overload or body did not come through intact.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown optimization level {level!r}; allowed: {', '.join(LEVELS)}")
    if LEVELS[level] is None:
        return model, {}
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    before = snapshot(model)
    options = FusionOptions("bert")
    for switch in LEVELS[level] or ():
        setattr(options, switch, False)
    heads, hidden = _heads_and_hidden(model)
    work = onnx.ModelProto()
    work.CopyFrom(model)  # the optimizer edits its input in place
    with quiet_ort_logs():
        optimized = optimize_model(work, model_type="bert", num_heads=heads, hidden_size=hidden,
                                   optimization_options=options, opt_level=0, use_gpu=False)
        stats = optimized.get_fused_operator_statistics()
    out = optimized.model
    if not any(i.domain == "com.microsoft" for i in out.opset_import) and any(
            n.domain == "com.microsoft" for n in out.graph.node):
        out.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))  # the optimizer adds it only on save
    assert_preserved(before, out, "ONNX Runtime's transformer optimizer")
    had = collections.Counter(n.op_type for n in model.graph.node)
    return out, {k: v - had[k] for k, v in stats.items() if v > had[k]}
