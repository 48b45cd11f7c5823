"""`flurka-export generate MODEL`: greedy or sampled generation in PyTorch or ONNX Runtime, streaming tokens."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import (
    add_command,
    finite_float,
    int_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)


def _options(args: argparse.Namespace) -> Any:
    from ..generate import GenerationError, SamplingOptions

    sampled = any(v is not None for v in (args.temperature, args.top_k, args.top_p))
    if sampled and args.greedy:
        raise GenerationError("--greedy takes no --temperature, --top-k or --top-p; give one or the other")
    return SamplingOptions(max_new_tokens=args.max_new_tokens, greedy=args.greedy or not sampled,
                           temperature=1.0 if args.temperature is None else args.temperature,
                           top_k=args.top_k or 0, top_p=1.0 if args.top_p is None else args.top_p, seed=args.seed)


def _decoder(source: Any, runtime: str) -> Any:
    from ..generate import ort_decoder, torch_decoder

    if runtime == "ort":
        if source.is_onnx:
            return ort_decoder(source.path, source.config, source.generation)
        return _exported_decoder(source)
    if source.is_onnx:
        raise ValueError(f"{source.path} is an ONNX export; --runtime torch needs the checkpoint directory")
    from ..models import load_pretrained

    return torch_decoder(load_pretrained(source.path), source.generation)


def _exported_decoder(source: Any) -> Any:
    """ONNX Runtime on a checkpoint: export it to a temporary file first (removed at exit)."""
    import atexit
    import tempfile
    from pathlib import Path

    from ..export import export_onnx
    from ..generate import ort_decoder

    tmp = tempfile.TemporaryDirectory(prefix="flurka-generate-")
    atexit.register(tmp.cleanup)
    path = export_onnx(source.path, Path(tmp.name) / "model.onnx")
    return ort_decoder(path, source.config, source.generation)


def _prompts(args: argparse.Namespace, tokenizer: Any) -> list[list[int]]:
    from ..generate import GenerationError

    if args.prompt and args.prompt_ids:
        raise GenerationError("give --prompt (text) or --prompt-ids (token ids), not both")
    if args.prompt_ids:
        return args.prompt_ids
    if not args.prompt:
        raise GenerationError("no prompt: give --prompt TEXT (repeat for a batch) or --prompt-ids 1,2,3")
    if tokenizer is None:
        raise GenerationError("--prompt needs a tokenizer.json in the checkpoint (this model has none); "
                              "give token ids with --prompt-ids 1,2,3")
    return [tokenizer.encode(p).ids for p in args.prompt]


def run(args: argparse.Namespace) -> int:
    from ..generate.model_source import open_source
    from ..generate.tokenizer import load_tokenizer

    options = _options(args)  # flags first: nothing is read before they are checked
    beams = _beam_options(args)
    source = open_source(args.model)
    tokenizer = load_tokenizer(source.tokenizer_text)
    prompts = _prompts(args, tokenizer)
    decoder = _decoder(source, args.runtime or ("ort" if source.is_onnx else "torch"))
    if beams is not None:
        return _run_beams(decoder, prompts, beams, source, tokenizer)
    return _run_sampling(decoder, prompts, options, source, tokenizer)


def _beam_options(args: argparse.Namespace) -> Any:
    from ..generate import GenerationError
    from ..generate.beam import BeamOptions

    if args.num_beams is None:
        if args.length_penalty is not None or args.early_stopping is not None:
            raise GenerationError("--length-penalty and --early-stopping apply to beam search: add --num-beams N")
        return None
    if any(v is not None for v in (args.temperature, args.top_k, args.top_p)):
        raise GenerationError("beam search (--num-beams) takes no --temperature, --top-k or --top-p")
    early = {"true": True, "false": False, "never": "never", None: False}[args.early_stopping]
    return BeamOptions(num_beams=args.num_beams, max_new_tokens=args.max_new_tokens,
                       length_penalty=1.0 if args.length_penalty is None else args.length_penalty, early_stopping=early)


def _run_beams(decoder: Any, prompts: list[list[int]], beams: Any, source: Any, tokenizer: Any) -> int:
    """Beam search has no token to stream before it ends: each prompt's best hypothesis, then the summary."""
    import time

    from ..generate.beam import beam_search

    t0 = time.perf_counter()
    rows = beam_search(decoder, prompts, beams, source.generation)
    for i, row in enumerate(rows):
        print(f"[{i}] " + (tokenizer.decode(row) if tokenizer is not None else " ".join(map(str, row))))
    print(f"generated {sum(len(r) for r in rows)} tokens for {len(prompts)} prompt(s) in {decoder.runtime} with "
          f"{beams.num_beams} beams: {(time.perf_counter() - t0) * 1e3:.1f} ms", file=sys.stderr)
    return 0


def _run_sampling(decoder: Any, prompts: list[list[int]], options: Any, source: Any, tokenizer: Any) -> int:
    from ..generate import generate_steps
    from ..generate.loop import Timing
    from ..generate.tokenizer import TextStream

    timing = Timing()
    rows: list[list[int]] = [[] for _ in prompts]
    streams = [TextStream(tokenizer) for _ in prompts] if tokenizer is not None else None
    live = len(prompts) == 1
    ended = [False] * len(prompts)
    for step in generate_steps(decoder, prompts, options, source.generation, timing):
        for i, t in enumerate(step.tokens.tolist()):
            if ended[i]:
                continue
            rows[i].append(t)
            ended[i] = bool(step.done[i])
            if live:
                piece = streams[0].push(t) if streams else f"{t} "
                sys.stdout.write(piece)
                sys.stdout.flush()
    if live:
        sys.stdout.write("\n")
    else:
        for i, row in enumerate(rows):
            text = tokenizer.decode(row) if tokenizer is not None else " ".join(map(str, row))
            print(f"[{i}] {text}")
    n = sum(len(r) for r in rows)
    print(f"generated {n} tokens for {len(prompts)} prompt(s) in {decoder.runtime}: prefill "
          f"{timing.prefill_ms:.1f} ms, {timing.ms_per_token:.2f} ms per token", file=sys.stderr)
    return 0


def _prompt_ids(text: str) -> list[int]:
    ids = int_list(text)
    if not ids:
        raise argparse.ArgumentTypeError(f"expected comma-separated token ids, got {text!r}")
    return ids


def register(sub: object) -> None:
    p = add_command(sub, "generate", run, "generate tokens from a language model (checkpoint or exported .onnx)",
                    description="Greedy or sampled decoding in PyTorch or ONNX Runtime, streaming tokens as they come "
                                "(text when the model carries a tokenizer.json), then one summary line.")
    p.add_argument("model", help="checkpoint directory or exported .onnx of a generating model (task lm)")
    p.add_argument("--prompt", action="append", help="prompt text (needs the model's tokenizer.json); repeat for a batch")
    p.add_argument("--prompt-ids", action="append", type=_prompt_ids, metavar="1,2,3",
                   help="prompt as token ids; repeat for a batch")
    p.add_argument("--max-new-tokens", type=positive_int, default=32)
    p.add_argument("--runtime", choices=("torch", "ort"), default=None,
                   help="torch (checkpoint) or ort (default: ort for .onnx, torch for a checkpoint)")
    p.add_argument("--greedy", action="store_true", help="argmax decoding (the default without sampling flags)")
    p.add_argument("--temperature", type=non_negative_float, help="sample with this temperature (> 0; 0 is greedy)")
    p.add_argument("--top-k", type=non_negative_int, help="sample among the k most likely tokens")
    p.add_argument("--top-p", type=positive_float, help="sample from the smallest set with probability >= p, in (0, 1]")
    p.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed")
    p.add_argument("--num-beams", type=positive_int, help="beam search with this many beams (transformers' algorithm)")
    p.add_argument("--length-penalty", type=finite_float, help="beam search: score / length**penalty (default 1.0)")
    p.add_argument("--early-stopping", choices=("true", "false", "never"),
                   help="beam search: stop when num_beams hypotheses are done (true), by transformers' heuristic "
                        "(false, the default) or only at max_new_tokens (never)")
