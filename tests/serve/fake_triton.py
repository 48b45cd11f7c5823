"""Stand-ins for `triton_python_backend_utils` tensors and responses, shared by the model.py tests
(test_triton_model.py, test_generate_model.py): the same calls, numbers through DLPack as the real stub."""

import types

import numpy as np


class FakeTensor:
    def __init__(self, name, array):
        self.name, self.array = name, np.asarray(array)

    def __dlpack__(self, *args, **kwargs):
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def as_numpy(self):
        return self.array

    @staticmethod
    def from_dlpack(name, capsule):
        holder = types.SimpleNamespace(__dlpack__=lambda *a, **k: capsule, __dlpack_device__=lambda: (1, 0))
        return FakeTensor(name, np.from_dlpack(holder))


class FakeResponse:
    def __init__(self, output_tensors=(), error=None):
        self.outputs = {t.name: t.array for t in output_tensors}
        self.error = error


def load_backend_model(monkeypatch, utils, source: str, config_text: str, onnx_path, tmp_path):
    """Import serve/<source> as Triton's Python backend would (with `utils` as triton_python_backend_utils) and
    initialise it on a version directory holding the model, config.pbtxt given as Triton passes it (JSON)."""
    import importlib.util
    import json
    import sys

    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", utils)
    spec = importlib.util.spec_from_file_location(
        f"flurka_{source.removesuffix('.py')}", importlib.util.find_spec("flurka_export.serve")
        .submodule_search_locations[0] + "/" + source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = text_format.Parse(config_text, model_config_pb2.ModelConfig())  # the config Triton would read
    version = tmp_path / "1"
    version.mkdir(exist_ok=True)
    from pathlib import Path

    files = sorted(Path(onnx_path).glob("*.onnx")) if Path(onnx_path).is_dir() else [Path(onnx_path)]
    for f in files:  # one file is model.onnx; an export directory's files keep their names
        link = version / ("model.onnx" if len(files) == 1 else f.name)
        link.unlink(missing_ok=True)
        link.symlink_to(f)
    model = module.TritonPythonModel()
    model.initialize({"model_config": json.dumps(json_format.MessageToDict(cfg, preserving_proto_field_name=True)),
                      "model_repository": str(tmp_path), "model_version": "1"})
    return model
