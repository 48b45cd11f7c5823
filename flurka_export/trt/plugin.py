"""Load libflurka_trt_plugin.so into TensorRT's plugin registry and check that it holds the FlurkaAttention creator.

The library exports getCreators/setLoggerFinder and registers nothing itself, so it is loaded with the registry's
own `load_library` (as trtexec --dynamicPlugins does); that is also the library a version-compatible plan can carry.
The self-registering libflurka_trt_plugin_static.so is for loaders that only dlopen (Polygraphy --plugins,
trtexec --staticPlugins, Triton's TensorRT backend); given that one, it is dlopened instead. If the creator is
registered already in this process, nothing more is loaded.
"""

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
STATIC_LIBRARY_NAME = "libflurka_trt_plugin_static.so"

_loaded: dict[str, Any] = {}  # resolved path -> the registry's library handle


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


def _registered(registry: Any) -> str:
    have = sorted(f"{c.name} v{c.plugin_version} ns={c.plugin_namespace!r}" for c in registry.all_creators)
    return ", ".join(have) or "none"


def load_plugin(path: str | os.PathLike | None = None, registry: Any = None) -> Path:
    """Load the library with `registry.load_library` (default: TensorRT's global registry) unless the creator is
    registered already, then check the registry has FlurkaAttention with the expected version and namespace."""
    if registry is None:
        registry = import_tensorrt().get_plugin_registry()
    lib = find_plugin(path).resolve()
    if registry.get_creator(PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None and lib.name == STATIC_LIBRARY_NAME:
        # The self-registering library: dlopen is all it needs (it must never go through load_library).
        try:
            _loaded[str(lib)] = ctypes.CDLL(str(lib))
        except OSError as e:
            raise PluginNotFound(f"cannot load the TensorRT plugin {lib}: {e}") from None
    elif registry.get_creator(PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None and str(lib) not in _loaded:
        handle = registry.load_library(str(lib))
        if handle is None:
            raise PluginNotFound(
                f"TensorRT could not load the plugin library {lib} (see TensorRT's log above: a missing dependency, "
                f"a library built for another TensorRT, or a FlurkaAttention plugin registered already; registered: "
                f"{_registered(registry)})")
        _loaded[str(lib)] = handle
    if registry.get_creator(PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None:
        raise PluginNotFound(
            f"{lib} loaded, but TensorRT has no plugin named {PLUGIN_NAME!r} version {PLUGIN_VERSION!r} namespace "
            f"{PLUGIN_NAMESPACE!r} (registered: {_registered(registry)})"
        )
    return lib
