"""Client helpers over tritonclient (HTTP and gRPC): one call, and the ready-to-paste examples."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

PROTOCOLS = ("http", "grpc")
_DTYPES = {np.dtype(np.int64): "INT64", np.dtype(np.int32): "INT32", np.dtype(np.float32): "FP32",
           np.dtype(np.float16): "FP16", np.dtype(np.float64): "FP64", np.dtype(np.bool_): "BOOL"}


def triton_dtype(array: np.ndarray) -> str:
    if array.dtype not in _DTYPES:
        raise ValueError(f"numpy dtype {array.dtype} has no Triton type here; allowed: "
                         f"{', '.join(str(d) for d in _DTYPES)}")
    return _DTYPES[array.dtype]


def make_client(protocol: str, url: str, *, timeout_s: float = 60.0) -> Any:
    """A tritonclient InferenceServerClient for "http" (host:port) or "grpc" (host:port)."""
    if protocol == "http":
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(url, connection_timeout=timeout_s, network_timeout=timeout_s)
    if protocol == "grpc":
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(url)
    raise ValueError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")


def infer(client: Any, protocol: str, model: str, inputs: dict[str, np.ndarray], outputs: list[str], *,
          timeout_s: float = 60.0) -> dict[str, np.ndarray]:
    """One inference request; raises tritonclient's InferenceServerException with the server's message."""
    if protocol == "http":
        import tritonclient.http as tc
    else:
        import tritonclient.grpc as tc
    tensors = []
    for name, array in inputs.items():
        t = tc.InferInput(name, list(array.shape), triton_dtype(array))
        t.set_data_from_numpy(np.ascontiguousarray(array))
        tensors.append(t)
    requested = [tc.InferRequestedOutput(name) for name in outputs]
    if protocol == "http":
        result = client.infer(model, tensors, outputs=requested, timeout=int(timeout_s * 1e6))
    else:
        result = client.infer(model, tensors, outputs=requested, client_timeout=timeout_s)
    return {name: result.as_numpy(name) for name in outputs}


def example_inputs(input_names: list[str], n: int = 4, *, token_input: str | None = None,
                   mask_input: str | None = None) -> dict[str, np.ndarray]:
    """A small token request (ids 1..n, no padding) for the startup line, when the model takes only token ids
    and a mask (the family spec's serving I/O names them); else empty."""
    if token_input is None or token_input not in input_names or set(input_names) - {token_input, mask_input}:
        return {}
    ids = np.arange(1, n + 1, dtype=np.int64)[None]
    return {token_input: ids, **({mask_input: np.ones_like(ids)} if mask_input else {})}


def curl_command(http_url: str, model: str, inputs: dict[str, np.ndarray]) -> str:
    """A curl line for Triton's KServe v2 JSON protocol."""
    body = {"inputs": [{"name": k, "shape": list(v.shape), "datatype": triton_dtype(v), "data": v.ravel().tolist()}
                       for k, v in inputs.items()]}
    return f"curl -s -X POST http://{http_url}/v2/models/{model}/infer -d '{json.dumps(body, separators=(',', ':'))}'"


def generate_request(facts: Any, *, max_tokens: int = 16, stream: bool = False) -> dict[str, Any]:
    """A request body for the generate endpoints: text when the model has a tokenizer, else token ids."""
    prompt = {"text_input": "Hello"} if facts.tokenizer else {dict(facts.generation)["token_input"]: [1, 2, 3]}
    return {**prompt, "max_tokens": max_tokens, **({"stream": True} if stream else {})}


def generate_curl(http_url: str, model: str, facts: Any, *, stream: bool = False) -> str:
    """A curl line for Triton's generate (or, with `stream`, generate_stream: server-sent events)."""
    body = json.dumps(generate_request(facts, stream=stream), separators=(",", ":"))
    endpoint = "generate_stream" if stream else "generate"
    return f"curl -s{'N' if stream else ''} -X POST http://{http_url}/v2/models/{model}/{endpoint} -d '{body}'"


def model_metrics(metrics_url: str, model: str, version: str = "1") -> dict[str, float]:
    """Triton's per-model Prometheus counters (nv_inference_count, nv_inference_exec_count, ...) for `model`."""
    import re
    import urllib.request

    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        text = r.read().decode()
    pattern = re.compile(rf'^(nv_\w+){{model="{re.escape(model)}",version="{version}"}} (\S+)$', re.M)
    return {name: float(value) for name, value in pattern.findall(text)}
