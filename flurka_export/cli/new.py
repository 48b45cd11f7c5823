"""`flurka-export new`: a checkpoint with fresh weights from a preset or flags."""

from __future__ import annotations

import argparse

from .common import add_command, add_output, config_flags, config_from_args


def run(args: argparse.Namespace) -> int:
    from ..models import build_model, save_pretrained
    from ..models.checkpoint import CHECKPOINT_FILES
    from ..utils import check_output_dir

    config = config_from_args(args)
    check_output_dir(args.output, overwrite=args.overwrite, writes=CHECKPOINT_FILES, what="checkpoint directory")
    model = build_model(config)
    save_pretrained(model, args.output, overwrite=args.overwrite)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.output}: task={config.task} attention={config.attention} layers={config.num_layers} "
          f"hidden={config.hidden_size} heads={config.num_heads} k={config.low_rank} N_max={config.max_seq_len} "
          f"({n / 1e6:.2f}M parameters)")
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "new", run, "make a checkpoint with fresh weights from a preset or flags")
    config_flags(p)
    add_output(p, "checkpoint directory to write")
