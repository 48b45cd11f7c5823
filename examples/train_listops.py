#!/usr/bin/env python
"""Train a small FLuRKA encoder on Long Range Arena's ListOps on the CPU, export it, check it in ONNX Runtime.

    python examples/train_listops.py                      # the real run: lengths 500..2000, 20 minutes
    python examples/train_listops.py --max-len 64 --train-size 256 --minutes 0.2   # smoke run, < 1 minute
    python examples/train_listops.py --convert-from runs/listops-softmax/checkpoint --attention flurka-elu

ListOps is generated locally (flurka_export.data.listops, fixed seeds); nothing is downloaded.
Chance is 10%; LRA's transformers reach 36-38% test accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from flurka_export.data import listops
from flurka_export.models import ATTENTION_KINDS, FlurkaConfig, build_model, load_pretrained
from flurka_export.models.convert import convert_attention
from flurka_export.train import export_test_results, train_classifier
from flurka_export.train.loop import accuracy, start_run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-len", type=int, default=2000, help="longest expression in tokens (LRA: 2000)")
    p.add_argument("--min-len", type=int, default=None, help="shortest expression (default: max-len / 4, LRA: 500)")
    p.add_argument("--train-size", type=int, default=40000)
    p.add_argument("--val-size", type=int, default=500)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--minutes", type=float, default=20.0, help="training time budget (wall clock)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--eval-every", type=float, default=1.0, help="validate every N minutes")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--attention", choices=ATTENTION_KINDS, default="flurka-elu")
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--intermediate-size", type=int, default=128)
    p.add_argument("--low-rank", type=int, default=64, help="k of E_K/E_V")
    p.add_argument("--num-features", type=int, default=32, help="P for rfa/favor")
    p.add_argument("--convert-from", default=None, metavar="CKPT",
                   help="start from this checkpoint, converted to --attention (up-training)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out-dir", default="runs/listops")
    p.add_argument("--int8", action="store_true",
                   help="also quantize the ONNX file to int8 (flurka-export optimize --quantize int8) and report "
                        "fp32 and int8 test accuracy side by side")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export and check")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p.parse_args(argv)


def _initial_model(args: argparse.Namespace, test: Callable, results: dict) -> torch.nn.Module:
    """A fresh model, or --convert-from's checkpoint converted to --attention (its accuracies recorded)."""
    if args.convert_from:
        source = load_pretrained(args.convert_from)
        if source.config.max_seq_len < args.max_len + 1:
            sys.exit(f"{args.convert_from} has max_seq_len {source.config.max_seq_len}; --max-len must be at most "
                     f"{source.config.max_seq_len - 1}")
        results["source_test_accuracy"] = accuracy(source, test())
        print(f"source {args.convert_from} ({source.config.attention}): test accuracy "
              f"{results['source_test_accuracy']:.4f}")
        if source.config.attention == args.attention:
            model = source
        else:
            model, report = convert_attention(source, args.attention, low_rank=args.low_rank,
                                              num_features=args.num_features)
            print(report.summary())
            results["converted_test_accuracy_before_finetune"] = accuracy(model, test())
            print(f"after conversion, before fine-tuning: test accuracy "
                  f"{results['converted_test_accuracy_before_finetune']:.4f}")
    else:
        config = FlurkaConfig(task="classify", attention=args.attention, num_layers=args.num_layers,
                              hidden_size=args.hidden_size, num_heads=args.num_heads,
                              intermediate_size=args.intermediate_size, low_rank=min(args.low_rank, args.max_len + 1),
                              max_seq_len=args.max_len + 1, num_features=args.num_features,
                              vocab_size=len(listops.VOCAB), num_labels=listops.NUM_CLASSES, seed=args.seed)
        model = build_model(config)
    return model


def _test(args: argparse.Namespace, ckpt: Path, out: Path, test: Callable, results: dict) -> None:
    """Test accuracy of the best checkpoint: in PyTorch only (--no-onnx), else exported and compared in ONNX
    Runtime, and with --int8 also the int8 model."""
    if args.no_onnx:
        best = load_pretrained(ckpt)
        results["test_accuracy_torch"] = accuracy(best, test())
        print(f"test accuracy PyTorch {results['test_accuracy_torch']:.4f}")
    else:
        results.update(export_test_results(ckpt, out / "listops.onnx", test, int8=args.int8))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = start_run(args.seed, args.threads, args.out_dir)
    min_len = args.min_len or max(1, args.max_len // 4)

    t0 = time.monotonic()
    data = listops.make_splits(args.train_size, args.val_size, args.test_size, min_len=min_len,
                               max_len=args.max_len, seed=args.seed)
    print(f"ListOps: {len(data['train'])} train / {len(data['validation'])} validation / {len(data['test'])} test, "
          f"lengths {min_len}..{args.max_len} tokens, generated in {time.monotonic() - t0:.1f} s")

    results: dict = {"args": vars(args)}
    bs = args.batch_size
    # Padding to multiples of 64 keeps the number of distinct shapes small (steady memory, cached kernels).
    n_max = args.max_len + 1
    val = lambda: data["validation"].batches(bs, bucket=True, max_seq_len=n_max, pad_to_multiple=64)  # noqa: E731
    test = lambda: data["test"].batches(bs, bucket=True, max_seq_len=n_max, pad_to_multiple=64)  # noqa: E731
    model = _initial_model(args, test, results)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {model.config.attention}, {model.config.num_layers} layers, hidden {model.config.hidden_size}, "
          f"{model.config.num_heads} heads, k={model.config.low_rank}, N_max={model.config.max_seq_len}, "
          f"{n_params / 1e3:.0f}k parameters; training {args.minutes} min on {torch.get_num_threads()} threads")

    ckpt = out / "checkpoint"
    result = train_classifier(
        model,
        lambda epoch: data["train"].batches(bs, shuffle=True, seed=args.seed * 1000 + epoch, bucket=True,
                                            max_seq_len=n_max, pad_to_multiple=64),
        val, minutes=args.minutes, max_steps=args.max_steps, lr=args.lr, eval_every_minutes=args.eval_every,
        save_dir=ckpt, progress=not args.no_progress,
    )
    results["history"] = result.history
    results["best_val_accuracy"] = result.best_val_acc
    results["steps"] = result.steps
    print(f"trained {result.steps} steps in {result.minutes:.1f} min; best validation accuracy "
          f"{result.best_val_acc:.4f} at step {result.best_step}; checkpoint {ckpt}")

    _test(args, ckpt, out, test, results)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
