"""Optimisation profiles for the dynamic inputs: min/opt/max batch and sequence length, max <= N_max."""

from __future__ import annotations

import re
from dataclasses import dataclass

import onnx

from ..models import FlurkaConfig
from ..models.exported import ExportedModel

Dims = tuple[int, ...]


@dataclass(frozen=True)
class InputProfile:
    name: str
    min: Dims
    opt: Dims
    max: Dims


def parse_shape_spec(spec: str) -> tuple[Dims, Dims, Dims]:
    """'1x1,4x128,8x512' -> ((1, 1), (4, 128), (8, 512)) as min, opt, max."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if len(parts) != 3 or not all(re.fullmatch(r"\d+(x\d+)*", p) for p in parts):
        raise ValueError(f"bad shape range {spec!r}; expected MIN,OPT,MAX such as 1x1,4x128,8x512")
    mn, opt, mx = (tuple(int(d) for d in p.split("x")) for p in parts)
    if not (len(mn) == len(opt) == len(mx)):
        raise ValueError(f"bad shape range {spec!r}: min, opt and max must have the same rank")
    if any(a > b for a, b in zip(mn, opt, strict=True)) or any(a > b for a, b in zip(opt, mx, strict=True)):
        raise ValueError(f"bad shape range {spec!r}: need min <= opt <= max in every dimension")
    return mn, opt, mx


def default_profiles(model: onnx.ModelProto, max_batch: int = 8, opt_batch: int = 1,
                     shapes: dict[str, str] | None = None) -> list[InputProfile]:
    """One profile covering the model's dynamic inputs, as its family spec declares them: batch 1..max_batch,
    sequence 1..N_max (opt N_max/2); fixed dims stay fixed. `shapes` overrides inputs by name
    ('input_ids': '1x1,4x128,8x512'); inputs with the same dims as an overridden one follow it."""
    exported = ExportedModel.read(model)
    config = exported.require_config("give --shapes for every dynamic input")
    spec = config.spec
    why = spec.trt_unsupported(config)
    if why:
        raise ValueError(f"TensorRT cannot build the {spec.family} family: {why}")
    shapes = shapes or {}
    n_max = exported.max_seq_len
    names = spec.trt_profile(config, batch=(1, opt_batch, max_batch), seq=(1, max(1, n_max // 2), n_max))
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise ValueError(f"--shapes names unknown inputs {unknown}; the model's inputs are {sorted(names)}")
    dims = {t.name: t.dims for t in spec.inputs(config)}
    profiles = []
    for name, (mn, opt, mx) in names.items():
        given = shapes.get(name) or next((shapes[o] for o in shapes if dims[o] == dims[name]), None)
        if given is not None:
            mn, opt, mx = parse_shape_spec(given)
        profiles.append(InputProfile(name, mn, opt, mx))
    check_profiles(profiles, config, n_max)
    return profiles


def check_profiles(profiles: list[InputProfile], config: FlurkaConfig, n_max: int) -> None:
    for p in profiles:
        config.spec.check_trt_profile(config, p.name, p.min, p.opt, p.max, n_max)


def parse_profile_spec(spec: str) -> dict[str, str]:
    """'input_ids:1x1,4x128,8x512;other:...' -> {name: 'MIN,OPT,MAX'}. Inputs left out that share the dims of a
    named one (attention_mask with input_ids) follow it in default_profiles."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in spec.split(";"))):
        name, sep, shape = item.partition(":")
        if not sep or not name:
            raise ValueError(f"bad profile {spec!r}; expected NAME:MIN,OPT,MAX[;NAME:MIN,OPT,MAX] such as "
                             "input_ids:1x1,4x128,8x512")
        out[name.strip()] = shape
    return out


def profiles_from_specs(model: onnx.ModelProto, specs: list[str], max_batch: int = 8) -> list[list[InputProfile]]:
    """One optimisation profile per spec (see parse_profile_spec); inputs a spec leaves out get the default range.
    Several narrow profiles (say, short and long sequences) usually give faster engines than one wide one."""
    if not specs:
        return [default_profiles(model, max_batch=max_batch)]
    return [default_profiles(model, max_batch=max_batch, shapes=parse_profile_spec(s)) for s in specs]
