"""Deployment targets (Triton Inference Server model repositories)."""

from .triton import DeployError, config_pbtxt, deploy_triton

__all__ = ["DeployError", "config_pbtxt", "deploy_triton"]
