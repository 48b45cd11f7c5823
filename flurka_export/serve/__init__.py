"""Serving on a real Triton Inference Server (the `tritonserver` of the nvidia-pytriton wheel, Python backend
running ONNX Runtime): repository writer, model.py, process supervision, client helpers."""

from .process import Endpoints, ServerError, TritonServer
from .repository import ModelFacts, model_facts, write_python_repository
from .session import Served, ServeOptions, serving

__all__ = ["Endpoints", "ModelFacts", "ServeOptions", "Served", "ServerError", "TritonServer", "model_facts",
           "serving", "write_python_repository"]
