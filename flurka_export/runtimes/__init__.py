"""Runtimes behind one interface (Polygraphy runners): PyTorch, ONNX Runtime, TensorRT.

Each backend imports its runtime lazily, so a missing optional runtime fails only where used.
"""
