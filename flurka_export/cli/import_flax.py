"""`flurka-export import-flax FILE.msgpack -o CKPT`: a checkpoint of the authors' Flax code (sabertooth)."""

from __future__ import annotations

import argparse
import warnings

from .common import add_command, add_overwrite


def run(args: argparse.Namespace) -> int:
    from ..importers.flax import import_flax_checkpoint
    from ..models.checkpoint import CHECKPOINT_FILES
    from ..utils import check_output_dir

    check_output_dir(args.output, overwrite=args.overwrite, writes=CHECKPOINT_FILES, what="checkpoint directory")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, report = import_flax_checkpoint(
            args.file, args.output, config=args.config, attention=args.attention, task=args.task,
            seq_len=args.seq_len, random_matrices=args.random_matrices, tau=args.tau,
            allow_unmapped=args.allow_unmapped,
        )
    print(report.summary())
    for w in caught:
        print(f"warning: {w.message}")
    print(f"wrote {args.output}")
    return 0


def register(sub: object) -> None:
    from ..models.config import ATTENTION_KINDS, TASKS

    p = add_command(sub, "import-flax", run, "convert a checkpoint of the authors' Flax code (sabertooth)",
                    description="Map a sabertooth (JAX/Flax) BERT checkpoint, stored with flax.serialization "
                                "msgpack, onto a flurka-export checkpoint. Every parameter that cannot be "
                                "mapped is named; that is an error unless --allow-unmapped.")
    p.add_argument("file", help="FILE.msgpack (flax.serialization.to_bytes of the params or a train state)")
    p.add_argument("-o", "--output", required=True, help="checkpoint directory to write")
    p.add_argument("--config", default=None, help="JSON file of FlurkaConfig fields for what shapes cannot tell")
    p.add_argument("--attention", choices=ATTENTION_KINDS, default=None,
                   help="attention kind (inferred when the parameters tell: rfa has sigma, softmax has no mha)")
    p.add_argument("--task", choices=TASKS, default=None, help="default: mlm if a masked-LM head is present")
    p.add_argument("--seq-len", type=int, default=None,
                   help="which downsample matrices to use (sabertooth stores 128 and 512; default: the largest)")
    p.add_argument("--random-matrices", default=None, metavar="NPY",
                   help="sabertooth's RFA random matrices {head_dim}_{P}.npy; the first num_heads are used")
    p.add_argument("--tau", type=float, default=1.0, help="RFA temperature (sabertooth default 1.0)")
    p.add_argument("--allow-unmapped", action="store_true", help="warn about unmapped parameters instead of failing")
    add_overwrite(p)
