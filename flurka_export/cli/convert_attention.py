"""`flurka-export convert-attention CKPT --to KIND -o NEW`: up-training starting point."""

from __future__ import annotations

import argparse

from .common import add_command, add_output, non_negative_int, positive_int


def run(args: argparse.Namespace) -> int:
    from ..models.convert import convert_checkpoint

    report = convert_checkpoint(args.checkpoint, args.output, args.to, low_rank=args.low_rank,
                                num_features=args.num_features, seed=args.seed,
                                overwrite=args.overwrite)
    print(report.summary())
    print(f"wrote {args.output} (fine-tune it: the new attention changes the model's function)")
    return 0


def register(sub: object) -> None:
    from ..models.config import ATTENTION_KINDS

    p = add_command(sub, "convert-attention", run,
                    "turn a checkpoint of one attention kind into another, reusing all weights that fit",
                    description="Copy Q/K/V/O, embeddings, norms, FFN and heads into a model of another "
                                "attention kind; initialise E_K/E_V and random features; name what was "
                                "added and dropped.")
    p.add_argument("checkpoint", help="source checkpoint directory")
    p.add_argument("--to", required=True, choices=ATTENTION_KINDS, help="target attention kind")
    add_output(p, "checkpoint directory to write")
    p.add_argument("--low-rank", type=positive_int, default=None, help="k for E_K/E_V (default: the source config's)")
    p.add_argument("--num-features", type=positive_int, default=None, help="P for rfa/favor (default: the source's)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="seed for the new E_K/E_V and random features")
