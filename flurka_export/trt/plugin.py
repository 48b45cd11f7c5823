"""Load libflurka_trt_plugin.so and check that TensorRT's registry holds the FlurkaAttention creator."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

from ..ops.schema import OP_NAME, OP_VERSION, PLUGIN_NAMESPACE
from .availability import import_tensorrt

PLUGIN_NAME = OP_NAME
PLUGIN_VERSION = str(OP_VERSION)
LIBRARY_NAME = "libflurka_trt_plugin.so"

_loaded: dict[str, Any] = {}


class PluginNotFound(RuntimeError):
    pass


def find_plugin(path: str | os.PathLike | None = None) -> Path:
    """The plugin library: `path`, else $FLURKA_TRT_PLUGIN, else build/<LIBRARY_NAME>."""
    candidates = [Path(p) for p in (path, os.environ.get("FLURKA_TRT_PLUGIN"), Path("build") / LIBRARY_NAME) if p]
    for c in candidates:
        if c.is_dir() and (c / LIBRARY_NAME).is_file():
            return c / LIBRARY_NAME
        if c.is_file():
            return c
    raise PluginNotFound(
        f"TensorRT plugin library not found (looked at {', '.join(str(c) for c in candidates)}); "
        f"build it with `flurka-export build-plugin -o build/` and pass --plugin build/{LIBRARY_NAME}"
    )


def load_plugin(path: str | os.PathLike | None = None) -> Path:
    """dlopen the library (its static REGISTER_TENSORRT_PLUGIN registers the creator) and check the
    registry has FlurkaAttention with the expected version and namespace."""
    trt = import_tensorrt()
    lib = find_plugin(path).resolve()
    if str(lib) not in _loaded:
        try:
            _loaded[str(lib)] = ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            raise PluginNotFound(f"cannot load the TensorRT plugin {lib}: {e}") from None
    registry = trt.get_plugin_registry()
    if registry.get_creator(PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None:
        have = sorted(f"{c.name} v{c.plugin_version} ns={c.plugin_namespace!r}" for c in registry.all_creators)
        raise PluginNotFound(
            f"{lib} loaded, but TensorRT has no plugin named {PLUGIN_NAME!r} version {PLUGIN_VERSION!r} namespace "
            f"{PLUGIN_NAMESPACE!r} (registered: {', '.join(have) or 'none'})"
        )
    return lib
