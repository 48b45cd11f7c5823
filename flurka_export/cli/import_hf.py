"""`flurka-export import-hf DIR -o CKPT`: a Hugging Face transformers checkpoint (BERT, RoBERTa, ViT)."""

from __future__ import annotations

import argparse

from .common import add_command, add_overwrite, run_import


def run(args: argparse.Namespace) -> int:
    from ..importers.hf import import_hf_checkpoint

    return run_import(args, lambda: import_hf_checkpoint(args.directory, args.output,
                                                         allow_unmapped=args.allow_unmapped))


def register(sub: object) -> None:
    from ..importers.hf import ARCHITECTURES

    p = add_command(sub, "import-hf", run, "convert a Hugging Face transformers checkpoint (BERT, RoBERTa, ViT)",
                    description="Map a directory written by transformers' save_pretrained (config.json + "
                                "model.safetensors; pickled pytorch_model.bin is refused) onto a flurka-export "
                                "checkpoint with softmax attention. Supported: " + ", ".join(ARCHITECTURES) +
                                ". Then `convert-attention --to flurka-elu` and `export` work on it.")
    p.add_argument("directory", help="save_pretrained directory (config.json + model.safetensors)")
    p.add_argument("-o", "--output", required=True, help="checkpoint directory to write")
    p.add_argument("--allow-unmapped", action="store_true", help="warn about unmapped tensors instead of failing")
    add_overwrite(p)
