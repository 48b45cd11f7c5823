"""Argument helpers shared by several sub-commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_command(sub: Any, name: str, handler: Callable[[argparse.Namespace], int | None], help: str,
                description: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=description or help)
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    p.set_defaults(handler=handler)
    return p


PLUGIN_LIBRARY = "libflurka_trt_plugin.so"


def add_plugin(p: argparse.ArgumentParser, what: str) -> None:
    """--plugin, the same for every command that loads or packages the TensorRT plugin."""
    p.add_argument("--plugin", default=None, metavar="LIB.so",
                   help=f"TensorRT plugin library ({PLUGIN_LIBRARY}) {what} (default: $FLURKA_TRT_PLUGIN or build/)")


def str_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c'] (argparse `type=`)."""
    return [x.strip() for x in text.split(",") if x.strip()]


def int_list(text: str) -> list[int]:
    """'80,86' -> [80, 86] (argparse `type=`; a bad item is a one-line usage error)."""
    try:
        return [int(x) for x in str_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


# Validators for argparse `type=`: a flag is checked while the command line is parsed, before any file is read
# or any work is done, and a bad value is a one-line usage error that names the flag (exit code 1).

def bounded_int(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """`type=` for an integer flag in [lo, hi] (either bound may be open)."""
    what = f"an integer {_range(lo, hi)}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {what}, not {value}")
        return value
    return parse


def bounded_float(lo: float, positive: bool = False) -> Callable[[str], float]:
    """`type=` for a finite float flag >= lo (> lo with `positive`)."""
    import math

    what = f"a number {'>' if positive else '>='} {lo:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
        if not math.isfinite(value) or value < lo or (positive and value == lo):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
        return value
    return parse


def finite_float(text: str) -> float:
    """`type=` for a float flag that may take any finite value (a negative length penalty, say)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def _range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    return f">= {lo}" if lo is not None else f"<= {hi}"


def shape_list(text: str) -> str:
    """`type=` for --shapes: the BATCHxSEQ syntax (BATCH alone for image models) with both at least 1, checked
    before the model is read; the model's own range is checked once it is."""
    import re

    items = str_list(text)
    for item in items:
        m = re.fullmatch(r"(\d+)(?:x(\d+))?", item)
        if not m or any(g is not None and int(g) < 1 for g in m.groups()):
            raise argparse.ArgumentTypeError(f"bad shape {item!r}; expected BATCHxSEQ with both at least 1, "
                                             "such as 4x300 (or BATCH for image models)")
    if not items:
        raise argparse.ArgumentTypeError("no shapes given")
    return text


positive_int = bounded_int(1)
non_negative_int = bounded_int(0)
non_negative_float = bounded_float(0.0)
positive_float = bounded_float(0.0, positive=True)
port = bounded_int(0, 65535)  # 0 = any free port
DTYPE_NAMES = ("fp32", "fp16", "bf16")  # export.onnx_export.DTYPES without importing torch (a test keeps them equal)


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files this command writes if they already exist (nothing else is touched)")


def add_output(p: argparse.ArgumentParser, what: str) -> None:
    """-o/--output (required) and --overwrite: every command that writes one file or directory."""
    p.add_argument("-o", "--output", required=True, help=what)
    add_overwrite(p)


def config_flags(p: argparse.ArgumentParser) -> None:
    """Flags that fill FlurkaConfig fields (unset flags keep the preset's value)."""
    from ..models.config import ATTENTION_KINDS, PRESETS, TASKS

    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="size preset (default: tiny)")
    p.add_argument("--task", choices=TASKS, default="classify")
    p.add_argument("--attention", choices=ATTENTION_KINDS, default=None,
                   help="attention kind (default: flurka-elu; kernel-elu for --task lm, which must be causal)")
    p.add_argument("--decoder-attention", choices=ATTENTION_KINDS, default=None,
                   help="seq2seq: the decoder's causal self-attention (default kernel-elu)")
    p.add_argument("--cross-attention", choices=ATTENTION_KINDS, default=None,
                   help="seq2seq: attention over the encoder output, any kind (default: --attention)")
    for name, kind in (("num-layers", int), ("hidden-size", int), ("num-heads", int), ("low-rank", int),
                       ("max-seq-len", int), ("num-features", int), ("vocab-size", int), ("num-labels", int),
                       ("intermediate-size", int), ("image-size", int), ("patch-size", int),
                       ("num-channels", int), ("seed", int), ("stabilizer", float), ("eps", float), ("nu", int)):
        p.add_argument(f"--{name}", type=kind, default=None)


def config_from_args(args: argparse.Namespace) -> Any:
    from ..models.config import PRESETS, FlurkaConfig, default_attention

    fields = dict(PRESETS[args.preset])
    fields.update(task=args.task, attention=args.attention or default_attention(args.task))
    for key in ("num_layers", "hidden_size", "num_heads", "low_rank", "max_seq_len", "num_features", "vocab_size",
                "num_labels", "intermediate_size", "image_size", "patch_size", "num_channels", "seed",
                "stabilizer", "eps", "nu", "decoder_attention", "cross_attention"):
        value = getattr(args, key, None)
        if value is not None:
            fields[key] = value
    return FlurkaConfig(**fields)


def run_import(args: argparse.Namespace, do_import: Callable[[], tuple[Any, Any]]) -> int:
    """The shared body of import-hf / import-flax: refuse the output before reading anything, print the
    import report and its warnings, then where it went."""
    import warnings

    from ..models.checkpoint import CHECKPOINT_FILES
    from ..utils import check_output_dir

    check_output_dir(args.output, overwrite=args.overwrite, writes=CHECKPOINT_FILES, what="checkpoint directory")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, report = do_import()
    print(report.summary())
    for w in caught:
        print(f"warning: {w.message}")
    print(f"wrote {args.output}")
    return 0
