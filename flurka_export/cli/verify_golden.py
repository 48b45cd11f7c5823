"""The golden-file modes of `flurka-export verify` (flurka_export/parity/golden.py):

    verify CKPT model.onnx --save-golden golden.npz [--load-inputs real.npz]   here, with the checkpoint
    verify model.plan --golden golden.npz --plugin libflurka_trt_plugin.so     on the TensorRT machine
"""

from __future__ import annotations

import argparse


def wants_golden(args: argparse.Namespace) -> bool:
    return bool(args.golden or args.save_golden or args.load_inputs or not args.model)


def run_golden(args: argparse.Namespace) -> int:
    from ..parity.golden import check_golden, format_golden, save_golden
    from ..utils import check_output_file

    if args.golden and args.save_golden:
        raise ValueError("--golden (check against a file) and --save-golden (write one) do not go together")
    if args.load_inputs and not args.save_golden:
        raise ValueError("--load-inputs gives the inputs of a golden file: use it with --save-golden")
    if args.save_golden:
        if not args.model:
            raise ValueError("--save-golden needs the checkpoint and the ONNX file: verify CKPT model.onnx "
                             "--save-golden golden.npz")
        check_output_file(args.save_golden, overwrite=args.overwrite, what="golden file")
        meta = save_golden(args.checkpoint, args.model, args.save_golden, shapes=args.shapes, seed=args.seed,
                           atol=args.atol, rtol=args.rtol, load_inputs=args.load_inputs)
        print(f"wrote {args.save_golden}: {len(meta['cases'])} input sets ({meta['inputs_from']}), PyTorch outputs "
              f"and per-layer tensors, atol={meta['atol']:g} rtol={meta['rtol']:g}; check an engine with "
              f"`flurka-export verify model.plan --golden {args.save_golden} --plugin libflurka_trt_plugin.so`")
        return 0
    if not args.golden:
        raise ValueError("verify needs the checkpoint and the ONNX file (verify CKPT model.onnx), or a model and "
                         "--golden FILE.npz")
    if args.model:
        raise ValueError("with --golden give only the model to check (a TensorRT plan or an .onnx file), "
                         "not a checkpoint")
    report = check_golden(args.golden, args.checkpoint, plugin=args.plugin, atol=args.atol, rtol=args.rtol)
    print(format_golden(report))
    return 0 if report.passed else 1
