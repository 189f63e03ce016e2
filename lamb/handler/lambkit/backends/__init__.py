"""One backend per runtime library: it loads the model file and runs a batch of one.

A backend offers ``input`` (an ``InputSpec``) and ``run(x) -> [(output name, float32 vector)]``,
taking the input already laid out and typed as ``input`` says. It is safe to call ``run`` from
several threads at once. The model record's ``format`` chooses it (``BACKENDS``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    size: tuple | None  # (height, width); None: the model takes any size, fed the image's own
    layout: str  # "NHWC" (channels last) or "NCHW" (channels first, PyTorch's)
    dtype: object  # numpy dtype
    quantization: tuple  # (scale, zero point), or (None, None) for a float input


def load(model_format: str, path: str, record: dict, num_threads: int):
    """The backend for ``model_format`` ("tflite" or "onnx") on the model file ``path``."""
    if model_format == "tflite":
        from .litert import LiteRTBackend

        return LiteRTBackend(path, record, num_threads)
    if model_format == "onnx":
        from .ort import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, record, num_threads)
    raise ValueError(f"the model's format {model_format!r} has no backend here; expected tflite or onnx")


def declared_input(record: dict) -> dict:
    """The record's first input spec (shape, layout), or {}."""
    inputs = record.get("inputs")
    first = inputs[0] if isinstance(inputs, list) and inputs else None
    return first if isinstance(first, dict) else {}


def output_names(record: dict) -> list:
    """The output names the record lists, in its order (the Keras model's)."""
    outputs = record.get("outputs")
    if not isinstance(outputs, list):
        return []
    return [o.get("name") for o in outputs if isinstance(o, dict)]
