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
