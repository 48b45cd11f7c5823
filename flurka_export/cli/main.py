"""`flurka-export`: one sub-command per module in this package (each has `register(subparsers)`).

Heavy imports (torch, onnx, tensorrt) happen inside the handlers, so `--help` is fast and a missing
optional runtime only fails the command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ..version import __version__

# Every module in flurka_export.cli with a `register(subparsers)` function is a command. These come
# first in `--help`, in this order; any other command module follows alphabetically.
COMMAND_ORDER = ("new", "demo", "export", "inspect", "fuse", "optimize", "prepare_trt", "build_kernels", "build_plugin",
                 "build_engine", "verify", "bench", "deploy")


def command_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(_cli_path()) if not m.name.startswith("_")]
    names = [n for n in names if n not in ("main", "common")]
    return sorted(names, key=lambda n: (COMMAND_ORDER.index(n) if n in COMMAND_ORDER else len(COMMAND_ORDER), n))


def _cli_path() -> list[str]:
    return [str(Path(__file__).parent)]


class CommandError(Exception):
    """An expected failure: printed as one clear message, exit code 1, no traceback."""


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 1, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="flurka-export",
        description="Take trained FLuRKA transformers from PyTorch to ONNX Runtime and TensorRT.",
    )
    parser.add_argument("--version", action="version", version=f"flurka-export {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in command_modules():
        module = importlib.import_module(f"{__package__}.{name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every `finally` (temporary files) runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        text = f"{e.filename}: {e.strerror}"
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"flurka-export {args.command}: interrupted; nothing was left half-written", file=sys.stderr)
        return 130
    except Terminated:
        print(f"flurka-export {args.command}: terminated; nothing was left half-written", file=sys.stderr)
        return 143
    except BrokenPipeError:  # `flurka-export inspect m.onnx | head -1`: the reader left; exit quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (CommandError, ValueError, TypeError, OSError, ImportError) as e:
        if debug:
            raise
        print(f"flurka-export {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: still one line, the traceback with --debug
        if debug:
            raise
        print(f"flurka-export {args.command}: internal error: {type(e).__name__}: {_one_line(e)} "
              f"(a bug in flurka-export; rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
