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
                "stabilizer", "eps", "nu"):
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
