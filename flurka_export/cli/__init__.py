"""Command line interface."""

from .main import CommandError, main

__all__ = ["CommandError", "main"]
