"""`flurka-export`: one sub-command per module in this package (each has `register(subparsers)`).

Heavy imports (torch, onnx, tensorrt) happen inside the handlers, so `--help` is fast and a missing
optional runtime only fails the command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__

# Every module in flurka_export.cli with a `register(subparsers)` function is a command. These come
# first in `--help`, in this order; any other command module follows alphabetically.
COMMAND_ORDER = ("new", "demo", "export", "inspect", "fuse", "prepare_trt", "build_kernels", "build_plugin",
                 "build_engine", "verify", "bench", "deploy")


def command_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(_cli_path()) if not m.name.startswith("_")]
    names = [n for n in names if n not in ("main", "common")]
    return sorted(names, key=lambda n: (COMMAND_ORDER.index(n) if n in COMMAND_ORDER else len(COMMAND_ORDER), n))


def _cli_path() -> list[str]:
    return [str(Path(__file__).parent)]


class CommandError(Exception):
    """An expected failure: printed as one clear message, exit code 1, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flurka-export",
        description="Take trained FLuRKA transformers from PyTorch to ONNX Runtime and TensorRT.",
    )
    parser.add_argument("--version", action="version", version=f"flurka-export {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
        module = importlib.import_module(f"{__package__}.{name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("flurka-export: interrupted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, TypeError, FileNotFoundError, NotADirectoryError, ImportError) as e:
        if getattr(args, "debug", False):
            raise
        print(f"flurka-export {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
