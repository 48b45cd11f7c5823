"""How a plan was built, in a JSON file beside it (`model.plan.json`): deployment reads it without TensorRT.

A plan cannot be inspected without TensorRT (and a plan that carries its plugin library needs the runtime to
allow host code), so `build-engine` records what matters for moving the engine: version compatibility, whether
the plugin library is serialized into the plan, hardware compatibility, the optimisation profiles.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..utils import atomic_path

FORMAT = "flurka-export engine build info"
FORMAT_VERSION = 1


@dataclass
class BuildInfo:
    tensorrt: str
    version_compatible: bool = False
    exclude_lean_runtime: bool = False
    plugin_serialized: bool = False  # the plugin library is inside the plan: no file to load at deployment
    plugin: str | None = None  # file name of the plugin library the plan was built with
    hardware_compatibility: str = "none"
    builder_optimization_level: int | None = None
    profiles: list[list[dict[str, list[int] | str]]] = field(default_factory=list)


def info_path(plan: str | os.PathLike) -> Path:
    return Path(str(plan) + ".json")


def write_build_info(plan: str | os.PathLike, info: BuildInfo) -> Path:
    path = info_path(plan)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(info)}, indent=1))
    return path


def read_build_info(plan: str | os.PathLike) -> BuildInfo | None:
    """The build info beside `plan`, or None when there is none (a plan built by another tool)."""
    path = info_path(plan)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it or rebuild the engine") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a flurka-export build info file (no \"format\": \"{FORMAT}\")")
    known = set(BuildInfo.__dataclass_fields__)
    return BuildInfo(**{k: v for k, v in data.items() if k in known})
