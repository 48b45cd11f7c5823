"""Optimisation profiles for the dynamic inputs: min/opt/max batch and sequence length, max <= N_max."""

from __future__ import annotations

import re
from dataclasses import dataclass

import onnx

from ..models import FlurkaConfig
from ..onnx_io import META_CONFIG, exported_config, exported_max_seq_len

Dims = tuple[int, ...]


@dataclass(frozen=True)
class InputProfile:
    name: str
    min: Dims
    opt: Dims
    max: Dims


def config_from_onnx(model: onnx.ModelProto) -> FlurkaConfig | None:
    exported = exported_config(model)
    return FlurkaConfig.from_dict(exported) if exported is not None else None


def _max_seq(model: onnx.ModelProto, config: FlurkaConfig) -> int:
    exported = exported_max_seq_len(model)
    return exported if exported is not None else config.max_seq_len


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
    """One profile covering the model's dynamic inputs. Text: batch 1..max_batch, sequence 1..N_max
    (opt N_max/2); image: batch only. `shapes` overrides an input ('input_ids': '1x1,4x128,8x512')."""
    config = config_from_onnx(model)
    if config is None:
        raise ValueError(f"the ONNX model carries no {META_CONFIG} metadata; export it with flurka-export, "
                         "or give --shapes for every dynamic input")
    shapes = shapes or {}
    n_max = _max_seq(model, config)
    profiles = []
    if config.task == "image":
        c, s = config.num_channels, config.image_size
        names = {"pixel_values": ((1, c, s, s), (opt_batch, c, s, s), (max_batch, c, s, s))}
    else:
        seq = ((1, 1), (opt_batch, max(1, n_max // 2)), (max_batch, n_max))
        names = {"input_ids": seq, "attention_mask": seq}
        if config.type_vocab_size:  # models with token type embeddings take token_type_ids too
            names["token_type_ids"] = seq
    for name, (mn, opt, mx) in names.items():
        if name in shapes:
            mn, opt, mx = parse_shape_spec(shapes[name])
        profiles.append(InputProfile(name, mn, opt, mx))
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise ValueError(f"--shapes names unknown inputs {unknown}; the model's inputs are {sorted(names)}")
    check_profiles(profiles, config, n_max)
    return profiles


def check_profiles(profiles: list[InputProfile], config: FlurkaConfig, n_max: int) -> None:
    for p in profiles:
        if config.task == "image":
            fixed = (config.num_channels, config.image_size, config.image_size)
            for d in (p.min, p.opt, p.max):
                if tuple(d[1:]) != fixed:
                    raise ValueError(f"{p.name}: image models have fixed [C, H, W] = {list(fixed)}, got {list(d[1:])}")
            continue
        if len(p.max) != 2:
            raise ValueError(f"{p.name}: expected BATCHxSEQ shapes, got {p.max}")
        if p.max[1] > n_max:
            raise ValueError(f"{p.name}: profile max sequence length {p.max[1]} exceeds the model's N_max {n_max}")
        if p.min[0] < 1 or p.min[1] < 1:
            raise ValueError(f"{p.name}: batch and sequence length must be at least 1")


def parse_profile_spec(spec: str) -> dict[str, str]:
    """'input_ids:1x1,4x128,8x512;other:...' -> {name: 'MIN,OPT,MAX'}; attention_mask follows input_ids."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in spec.split(";"))):
        name, sep, shape = item.partition(":")
        if not sep or not name:
            raise ValueError(f"bad profile {spec!r}; expected NAME:MIN,OPT,MAX[;NAME:MIN,OPT,MAX] such as "
                             "input_ids:1x1,4x128,8x512")
        out[name.strip()] = shape
    if "input_ids" in out and "attention_mask" not in out:
        out["attention_mask"] = out["input_ids"]  # they always share a shape
    return out


def profiles_from_specs(model: onnx.ModelProto, specs: list[str], max_batch: int = 8) -> list[list[InputProfile]]:
    """One optimisation profile per spec (see parse_profile_spec); inputs a spec leaves out get the default range.
    Several narrow profiles (say, short and long sequences) usually give faster engines than one wide one."""
    if not specs:
        return [default_profiles(model, max_batch=max_batch)]
    return [default_profiles(model, max_batch=max_batch, shapes=parse_profile_spec(s)) for s in specs]
