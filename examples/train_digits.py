#!/usr/bin/env python
"""Train a small ViT with FLuRKA attention on scikit-learn's 8x8 digits, export it, check it in ONNX Runtime.

    python examples/train_digits.py                 # about 2 minutes on 2 CPU cores
    python examples/train_digits.py --minutes 0.2   # smoke run

Images are 8x8 with one channel: patch_size 2 gives 16 patches + CLS = 17 tokens, k = 8 low-rank.
"""

from __future__ import annotations

import argparse
import json
import time

from flurka_export.data.digits import batches, load_digits_splits
from flurka_export.models import ATTENTION_KINDS, FlurkaConfig, build_model, load_pretrained
from flurka_export.train import export_test_results, train_classifier
from flurka_export.train.loop import accuracy, start_run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--eval-every", type=float, default=0.25, help="validate every N minutes")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--attention", choices=ATTENTION_KINDS, default="flurka-elu")
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--low-rank", type=int, default=8)
    p.add_argument("--num-features", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out-dir", default="runs/digits")
    p.add_argument("--int8", action="store_true",
                   help="also quantize the ONNX file to int8 (flurka-export optimize --quantize int8) and report "
                        "fp32 and int8 test accuracy side by side")
    p.add_argument("--no-onnx", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = start_run(args.seed, args.threads, args.out_dir)
    data = load_digits_splits(seed=args.seed)
    print(f"digits: {len(data['train'][1])} train / {len(data['validation'][1])} validation / "
          f"{len(data['test'][1])} test images, 1x8x8")
    config = FlurkaConfig(task="image", attention=args.attention, num_layers=args.num_layers,
                          hidden_size=args.hidden_size, num_heads=args.num_heads, intermediate_size=2 * args.hidden_size,
                          image_size=8, patch_size=2, num_channels=1, max_seq_len=17, low_rank=args.low_rank,
                          num_features=args.num_features, num_labels=10, seed=args.seed)
    model = build_model(config)
    print(f"model: ViT {config.attention}, {config.num_layers} layers, hidden {config.hidden_size}, "
          f"{config.num_patches} patches + CLS, k={config.low_rank}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e3:.0f}k parameters")
    bs = args.batch_size
    val = lambda: batches(data["validation"], 256)  # noqa: E731
    test = lambda: batches(data["test"], 256)  # noqa: E731
    ckpt = out / "checkpoint"
    t0 = time.monotonic()
    result = train_classifier(model, lambda epoch: batches(data["train"], bs, shuffle=True, seed=args.seed * 1000 + epoch),
                              val, minutes=args.minutes, max_steps=args.max_steps, lr=args.lr, warmup_steps=20,
                              eval_every_minutes=args.eval_every, save_dir=ckpt, progress=not args.no_progress)
    print(f"trained {result.steps} steps in {time.monotonic() - t0:.0f} s; best validation accuracy "
          f"{result.best_val_acc:.4f}")
    results: dict = {"args": vars(args), "history": result.history, "best_val_accuracy": result.best_val_acc,
                     "steps": result.steps}
    if args.no_onnx:
        results["test_accuracy_torch"] = accuracy(load_pretrained(ckpt), test())
        print(f"test accuracy PyTorch {results['test_accuracy_torch']:.4f}")
    else:
        results.update(export_test_results(ckpt, out / "digits.onnx", test, int8=args.int8))
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
