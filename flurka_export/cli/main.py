"""`flurka-export`: one sub-command per module in this package (each has `register(subparsers)`).

Heavy imports (torch, onnx, tensorrt) happen inside the handlers, so `--help` is fast and a missing
optional runtime only fails the command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__

# Module names under flurka_export.cli, in the order `--help` lists them.
COMMAND_MODULES = (
    "new",
)


class CommandError(Exception):
    """An expected failure: printed as one clear message, exit code 1, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flurka-export",
        description="Take trained FLuRKA transformers from PyTorch to ONNX Runtime and TensorRT.",
    )
    parser.add_argument("--version", action="version", version=f"flurka-export {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(sub)
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
