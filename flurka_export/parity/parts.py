"""verify for families exported as a directory of ONNX files (seq2seq: encoder, first decoder step, decoder with
past): every runtime runs the parts through one function, `run(feed, part)`, so the family's verify cases and
beam search drive PyTorch and ONNX Runtime alike.

PyTorch runs the very modules the export traced (`spec.export_part`); every other runtime gets one runner per
file from the runtime registry, as a one-file verify does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..generate import BeamOptions, GenerationConfig, beam_search
from ..generate.seq2seq_decoder import Seq2SeqPartsDecoder, seq2seq_length_error
from ..models.exported import ExportedModel
from ..models.specs import FeedDriver, Step
from ..onnx_io import load_onnx
from ..runtimes import RunRequest, get_runtime

BEAM_OUTPUT = "beam_tokens"  # [B, steps] token ids of each source's best hypothesis (-1 after it ends)
BEAM_WIDTH = 3


def read_parts(directory: str | os.PathLike, spec: Any, config: Any) -> dict[str, tuple[str, ExportedModel]]:
    """part -> (its file, the file read); one line naming the missing file."""
    parts = {}
    for part, file_name in spec.export_parts(config):
        path = Path(directory) / file_name
        if not path.is_file():
            names = ", ".join(f for _, f in spec.export_parts(config))
            raise ValueError(f"{directory} has no {file_name}: a {spec.family} export directory holds {names}")
        parts[part] = (str(path), ExportedModel.read(load_onnx(path)))
    return parts


class TorchParts:
    """The reference: each part's module from the checkpoint's model, in float32, called as its graph is."""

    def __init__(self, model: Any, max_seq_len: int) -> None:
        import torch

        self.model, self.config = model.float().eval(), model.config
        spec = self.config.spec
        self.parts = {part: spec.export_part(self.model, part, torch.float32, max_seq_len)
                      for part, _ in spec.export_parts(self.config)}

    def __call__(self, feed: dict[str, np.ndarray], part: str) -> dict[str, np.ndarray]:
        import torch

        tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in feed.items()}
        tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
        desc = self.parts[part]
        with torch.no_grad():
            result = desc["module"](**self.config.spec.part_kwargs(self.config, part, tensors))
        values = result if isinstance(result, tuple | list) else (result,)
        return {n: v.float().numpy() for n, v in zip(desc["output_names"], values, strict=True)}


class RunnerParts:
    """One runtime over every file: a registry runner per part (activated here, stopped by `deactivate`)."""

    def __init__(self, name: str, parts: dict[str, tuple[str, ExportedModel]], model: Any, dtype: str,
                 providers: list[str] | None) -> None:
        self.runners: dict[str, Any] = {}
        try:
            for part, (path, exported) in parts.items():
                runner = get_runtime(name).make_runner(RunRequest(torch_model=model, onnx_model=exported.proto,
                                                                  onnx_path=path, dtype=dtype, providers=providers))
                runner.activate()
                self.runners[part] = runner
        except BaseException:
            self.deactivate()
            raise

    def __call__(self, feed: dict[str, np.ndarray], part: str) -> dict[str, np.ndarray]:
        return dict(self.runners[part].infer(feed, check_inputs=False))

    def deactivate(self) -> None:
        for runner in self.runners.values():
            runner.deactivate()
        self.runners.clear()


class MergedParts(RunnerParts):
    """One runtime over a merged file (decoder_model_merged.onnx): the parts it merges are routed to it, with the
    branch flag and stand-ins the family's `merged_feed` adds."""

    def __init__(self, name: str, parts: dict[str, tuple[str, ExportedModel]], merged: tuple[str, str, str],
                 path: str, model: Any, dtype: str, providers: list[str] | None) -> None:
        self.config, self.routed = model.config, set(merged[1:])
        exported = ExportedModel.read(load_onnx(path))
        keep = {p: v for p, v in parts.items() if p not in self.routed}
        super().__init__(name, {**keep, "merged": (path, exported)}, model, dtype, providers)
        self.dtypes = {i.name: onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
                       for i in exported.proto.graph.input}

    def __call__(self, feed: dict[str, np.ndarray], part: str) -> dict[str, np.ndarray]:
        if part in self.routed:
            feed, part = self.config.spec.merged_feed(self.config, part, feed, self.dtypes), "merged"
        return super().__call__(feed, part)


def parts_runners(name: str, directory: str | os.PathLike, parts: dict[str, tuple[str, ExportedModel]], model: Any,
                  dtype: str, providers: list[str] | None) -> dict[str, RunnerParts]:
    """Runtime `name` over the directory's parts, and as `<name> merged` over each merged file it has (none when
    the export predates them); what started is stopped again if a later one fails."""
    out = {name: RunnerParts(name, parts, model, dtype, providers)}
    try:
        for merged in model.config.spec.merged_parts(model.config):
            path = Path(directory) / merged[0]
            if path.is_file():
                out[f"{name} merged"] = MergedParts(name, parts, merged, str(path), model, dtype, providers)
    except BaseException:
        for runner in out.values():
            runner.deactivate()
        raise
    return out


class BeamCase(FeedDriver):
    """Beam search over the runtime's parts (the same search for each): the best hypothesis of every source row,
    tokens compared exactly."""

    def __init__(self, label: str, source: dict[str, np.ndarray], config: Any, gen: GenerationConfig,
                 steps: int, num_beams: int = BEAM_WIDTH) -> None:
        self.label, self.first_feed, self.config, self.gen = label, source, config, gen
        self.options = BeamOptions(num_beams=num_beams, max_new_tokens=steps)

    def drive(self, run: Any) -> list[Step]:
        spec = self.config.spec
        ids, mask = self.first_feed[spec.token_input], self.first_feed[spec.mask_input]
        prompts = [[int(t) for t, m in zip(row, keep, strict=True) if m] for row, keep in zip(ids, mask, strict=True)]
        decoder = Seq2SeqPartsDecoder(run, self.config, self.gen.decoder_start)
        best = beam_search(decoder, prompts, self.options, self.gen)
        out = np.full((len(prompts), self.options.max_new_tokens), -1, np.int64)
        for i, row in enumerate(best):
            out[i, :len(row)] = row
        return [(f"beam {self.options.num_beams}", {BEAM_OUTPUT: out})]


def beam_cases(cases: list[FeedDriver], config: Any, gen: GenerationConfig, steps: int) -> list[FeedDriver]:
    """A beam case over the source of every verify case, `steps` new tokens or as many as the decoder holds."""
    while steps > 1 and seq2seq_length_error(config, 1, steps):
        steps -= 1
    return [BeamCase(case.label.split("+")[0], case.first_feed, config, gen, steps) for case in cases]
