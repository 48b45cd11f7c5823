"""The family-spec registry, keyed by config.task: one module per family, each declaring `SPEC`
(a FamilySpec, see base.py). A module of this package is registered by being here; `register` adds a
spec from elsewhere (a plugin, a test) and returns a function that removes it again."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import register_families
from .base import (
    BATCH,
    SEQUENCE,
    FamilySpec,
    Feed,
    FeedDriver,
    Head,
    IOTensor,
    Outputs,
    PrefillThenSteps,
    RunFn,
    ServingIO,
    Shape,
    SingleFeed,
    Step,
    carry_state,
)

if TYPE_CHECKING:
    from ..config import FlurkaConfig

REGISTRY: dict[str, FamilySpec] = {}  # config.task -> spec


def register(spec: FamilySpec) -> Callable[[], None]:
    """Add a family; its heads' tasks must be new. Returns the function that unregisters it."""
    taken = sorted(set(spec.heads) & set(REGISTRY))
    if taken:
        raise ValueError(f"task {taken[0]!r} is already declared by the {REGISTRY[taken[0]].family} family")
    REGISTRY.update(dict.fromkeys(spec.heads, spec))

    def unregister() -> None:
        for task in spec.heads:
            REGISTRY.pop(task, None)
    return unregister


_DECLARED = [importlib.import_module(f"{__name__}.{m.name}").SPEC for m in pkgutil.iter_modules(__path__)
             if m.name != "base"]
for _spec in sorted(_DECLARED, key=lambda s: s.order):
    register(_spec)


def task_names() -> tuple[str, ...]:
    """Every config.task value a registered family serves."""
    return tuple(REGISTRY)


def spec_of(config_or_task: FlurkaConfig | str) -> FamilySpec:
    """The spec of a config (or a task name); ValueError listing the known tasks."""
    task = config_or_task if isinstance(config_or_task, str) else config_or_task.task
    try:
        return REGISTRY[task]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {task!r}; allowed: {', '.join(REGISTRY)}") from None


register_families(spec_of, task_names)

__all__ = [
    "BATCH", "REGISTRY", "SEQUENCE", "FamilySpec", "Feed", "FeedDriver", "Head", "IOTensor", "Outputs",
    "PrefillThenSteps", "RunFn", "ServingIO", "Shape", "SingleFeed", "Step", "carry_state", "register", "spec_of",
    "task_names",
]
