"""`flurka-export import-flax FILE.msgpack -o CKPT`: a checkpoint of the authors' Flax code (sabertooth)."""

from __future__ import annotations

import argparse

from .common import add_command, add_overwrite, positive_float, run_import


def run(args: argparse.Namespace) -> int:
    from ..importers.flax import import_flax_checkpoint

    return run_import(args, lambda: import_flax_checkpoint(
        args.file, args.output, flax_config=args.flax_config, attention=args.attention, task=args.task,
        seq_len=args.seq_len, hidden_act=args.hidden_act, random_matrices=args.random_matrices, tau=args.tau,
        allow_unmapped=args.allow_unmapped))


def register(sub: object) -> None:
    from ..models.config import ATTENTION_KINDS

    p = add_command(sub, "import-flax", run, "convert a checkpoint of the authors' Flax code (sabertooth)",
                    description="Map a checkpoint of the authors' JAX/Flax BERT (flax msgpack: params, a TrainState "
                                "or a flax.training checkpoint) onto a flurka-export checkpoint that computes what "
                                "their code computes at inference. Every parameter that is not mapped is dropped "
                                "by name with the reason, or named as an error.")
    p.add_argument("file", help="FILE.msgpack (flax.serialization.to_bytes of the params or a train state)")
    p.add_argument("-o", "--output", required=True, help="checkpoint directory to write")
    p.add_argument("--flax-config", default=None, metavar="JSON",
                   help="their run config saved as JSON (attention_type, up_train, max_seq_length, hidden_act, "
                        "layer_norm_eps, ...): decides the attention kind and the sequence length")
    p.add_argument("--attention", choices=ATTENTION_KINDS, default=None,
                   help="attention kind, when the parameters and no --flax-config can tell (LinPerfMHA: flurka-relu "
                        "if trained with up_train, else kernel-relu; LinRNNsMHA: flurka-elu; LinMHA: linformer)")
    p.add_argument("--task", choices=("classify", "mlm", "encoder"), default=None,
                   help="default: mlm for pre-training checkpoints, classify when a classification head is present")
    p.add_argument("--seq-len", type=int, choices=(128, 512), default=None,
                   help="input length the model will see: picks E_128 or E_512 (their code uses each only at its "
                        "length); required when both are stored and --flax-config does not say")
    p.add_argument("--hidden-act", default=None, help="feed-forward activation (default: --flax-config's, else gelu_new)")
    p.add_argument("--random-matrices", default=None, metavar="NPY",
                   help="their RFA random matrix bank {head_dim}_{head_dim}.npy; the first num_heads are used")
    p.add_argument("--tau", type=positive_float, default=1.0, help="RFA temperature (their default 1.0)")
    p.add_argument("--allow-unmapped", action="store_true", help="warn about unmapped parameters instead of failing")
    add_overwrite(p)
